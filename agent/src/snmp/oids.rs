//! Every OID the SNMP collector reads, with the MIB object it names and what becomes of it.
//!
//! Scalars carry their `.0` instance and are read with one GET. Table columns have no
//! instance: they are walked with GETBULK, and the rest of each returned OID is the row
//! index (`ifIndex`, `hrDeviceIndex`, `hrStorageIndex`, ...).

/// An object identifier as its arcs.
pub type Oid = &'static [u64];

// --- SNMPv2-MIB (RFC 3418), system group -------------------------------------------

/// `sysDescr.0`: free text; the inventory model when the MikroTik board name is absent.
pub const SYS_DESCR: Oid = &[1, 3, 6, 1, 2, 1, 1, 1, 0];
/// `sysUpTime.0`: hundredths of a second since the agent (re)started → `device.uptime_s`;
/// going backwards means a reboot.
pub const SYS_UPTIME: Oid = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
/// `sysName.0`: the device's own name → inventory `name`.
pub const SYS_NAME: Oid = &[1, 3, 6, 1, 2, 1, 1, 5, 0];

// --- SNMP-FRAMEWORK-MIB (RFC 3411), read over SNMPv3 only ----------------------------

/// `snmpEngineID.0`: binds the localized USM keys the collector keeps between polls.
pub const SNMP_ENGINE_ID: Oid = &[1, 3, 6, 1, 6, 3, 10, 2, 1, 1, 0];
/// `snmpEngineBoots.0`.
pub const SNMP_ENGINE_BOOTS: Oid = &[1, 3, 6, 1, 6, 3, 10, 2, 1, 2, 0];
/// `snmpEngineTime.0`: seconds since the last engine boot.
pub const SNMP_ENGINE_TIME: Oid = &[1, 3, 6, 1, 6, 3, 10, 2, 1, 3, 0];

// --- IF-MIB (RFC 2863): ifTable (1.3.6.1.2.1.2.2.1), rows indexed by ifIndex ---------

/// `ifDescr`: the interface name when `ifName` is absent or empty.
pub const IF_DESCR: Oid = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 2];
/// `ifType` (IANAifType) → inventory `kind`, see [`if_type_name`].
pub const IF_TYPE: Oid = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 3];
/// `ifAdminStatus`: up(1), down(2), testing(3); down → inventory `disabled`.
pub const IF_ADMIN_STATUS: Oid = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 7];
/// `ifOperStatus`: up(1) → `interface.running` 1, anything else → 0.
pub const IF_OPER_STATUS: Oid = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 8];
/// `ifInOctets` (Counter32): `interface.rx_bps` when `ifHCInOctets` is absent.
pub const IF_IN_OCTETS: Oid = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 10];
/// `ifInDiscards` (Counter32): part of `interface.drops`.
pub const IF_IN_DISCARDS: Oid = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 13];
/// `ifInErrors` (Counter32): part of `interface.errors`.
pub const IF_IN_ERRORS: Oid = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 14];
/// `ifOutOctets` (Counter32): `interface.tx_bps` when `ifHCOutOctets` is absent.
pub const IF_OUT_OCTETS: Oid = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 16];
/// `ifOutDiscards` (Counter32): part of `interface.drops`.
pub const IF_OUT_DISCARDS: Oid = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 19];
/// `ifOutErrors` (Counter32): part of `interface.errors`.
pub const IF_OUT_ERRORS: Oid = &[1, 3, 6, 1, 2, 1, 2, 2, 1, 20];

// --- IF-MIB: ifXTable (1.3.6.1.2.1.31.1.1.1), same ifIndex rows -----------------------

/// `ifName`: the interface's own name (RouterOS: `ether1`, `vlan100`, `<pppoe-user>`).
pub const IF_NAME: Oid = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1];
/// `ifHCInOctets` (Counter64) → `interface.rx_bps`.
pub const IF_HC_IN_OCTETS: Oid = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 6];
/// `ifHCOutOctets` (Counter64) → `interface.tx_bps`.
pub const IF_HC_OUT_OCTETS: Oid = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 10];

// --- IP-MIB (RFC 4293): ipAddrTable, read with the inventory ---------------------------

/// `ipAdEntIfIndex`, indexed by the address itself: which interface holds it.
pub const IP_AD_ENT_IF_INDEX: Oid = &[1, 3, 6, 1, 2, 1, 4, 20, 1, 2];
/// `ipAdEntNetMask`: the prefix length of the address.
pub const IP_AD_ENT_NET_MASK: Oid = &[1, 3, 6, 1, 2, 1, 4, 20, 1, 3];

// --- HOST-RESOURCES-MIB (RFC 2790) --------------------------------------------------

/// `hrProcessorLoad`: percent busy over the last minute, one row per processor; the
/// average over processors → `device.cpu_pct`.
pub const HR_PROCESSOR_LOAD: Oid = &[1, 3, 6, 1, 2, 1, 25, 3, 3, 1, 2];
/// `hrStorageType`: rows of type [`HR_STORAGE_RAM`] are memory.
pub const HR_STORAGE_TYPE: Oid = &[1, 3, 6, 1, 2, 1, 25, 2, 3, 1, 2];
/// `hrStorageAllocationUnits`: bytes per unit of size and used.
pub const HR_STORAGE_UNITS: Oid = &[1, 3, 6, 1, 2, 1, 25, 2, 3, 1, 4];
/// `hrStorageSize`, in allocation units.
pub const HR_STORAGE_SIZE: Oid = &[1, 3, 6, 1, 2, 1, 25, 2, 3, 1, 5];
/// `hrStorageUsed`, in allocation units; used / size of RAM → `device.mem_used_pct`.
pub const HR_STORAGE_USED: Oid = &[1, 3, 6, 1, 2, 1, 25, 2, 3, 1, 6];
/// `hrStorageRam`, the value of `hrStorageType` for main memory.
pub const HR_STORAGE_RAM: Oid = &[1, 3, 6, 1, 2, 1, 25, 2, 1, 2];

// --- MIKROTIK-MIB (enterprise 14988), read where present -------------------------------

/// `mtxrHlTemperature.0` (mtxrHealth 10): board temperature in tenths of °C →
/// `device.temperature_c`.
pub const MTXR_HL_TEMPERATURE: Oid = &[1, 3, 6, 1, 4, 1, 14988, 1, 1, 3, 10, 0];
/// `mtxrHlProcessorTemperature.0` (mtxrHealth 11): CPU temperature in tenths of °C, used
/// when the board temperature is absent.
pub const MTXR_HL_PROCESSOR_TEMPERATURE: Oid = &[1, 3, 6, 1, 4, 1, 14988, 1, 1, 3, 11, 0];
/// `mtxrGaugeName` (mtxrGaugeTable, mtxrHealth 100): RouterOS v7 lists its sensors here;
/// walked only when neither scalar temperature answers.
pub const MTXR_GAUGE_NAME: Oid = &[1, 3, 6, 1, 4, 1, 14988, 1, 1, 3, 100, 1, 2];
/// `mtxrGaugeValue`: the sensor reading, in the unit of `mtxrGaugeUnit`.
pub const MTXR_GAUGE_VALUE: Oid = &[1, 3, 6, 1, 4, 1, 14988, 1, 1, 3, 100, 1, 3];
/// `mtxrGaugeUnit`: celsius(1), rpm(2), dV(3), dA(4), dW(5), status(6).
pub const MTXR_GAUGE_UNIT: Oid = &[1, 3, 6, 1, 4, 1, 14988, 1, 1, 3, 100, 1, 4];
/// `mtxrGaugeUnit` value for degrees Celsius.
pub const MTXR_GAUGE_UNIT_CELSIUS: i64 = 1;
/// `mtxrLicVersion.0`: the RouterOS version → inventory `os_version`.
pub const MTXR_LIC_VERSION: Oid = &[1, 3, 6, 1, 4, 1, 14988, 1, 1, 4, 4, 0];
/// `mtxrDHCPLeaseCount.0` → `dhcp.leases`.
pub const MTXR_DHCP_LEASE_COUNT: Oid = &[1, 3, 6, 1, 4, 1, 14988, 1, 1, 6, 1, 0];
/// `mtxrBoardName.0` (mtxrSystem 9) → inventory `model`.
pub const MTXR_BOARD_NAME: Oid = &[1, 3, 6, 1, 4, 1, 14988, 1, 1, 7, 9, 0];

/// The dotted form of an OID, for messages.
pub fn dotted(oid: &[u64]) -> String {
    let mut out = String::with_capacity(oid.len() * 3);
    for (i, arc) in oid.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(&arc.to_string());
    }
    out
}

/// The inventory `kind` of an `ifType`: the RouterOS word where one exists, so that both
/// collectors describe an interface alike, else `iftype-<n>`.
pub fn if_type_name(if_type: i64) -> String {
    let known = match if_type {
        1 => "other",
        6 | 62 | 117 => "ether",
        23 => "ppp",
        24 => "loopback",
        53 => "virtual",
        71 => "wlan",
        131 => "tunnel",
        135 => "vlan",
        136 => "l3vlan",
        150 => "mpls-tunnel",
        161 => "bonding",
        166 => "mpls",
        209 => "bridge",
        _ => return format!("iftype-{if_type}"),
    };
    known.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_and_types() {
        assert_eq!(dotted(SYS_UPTIME), "1.3.6.1.2.1.1.3.0");
        assert_eq!(dotted(&[]), "");
        assert_eq!(if_type_name(6), "ether");
        assert_eq!(if_type_name(24), "loopback");
        assert_eq!(if_type_name(4242), "iftype-4242");
    }

    #[test]
    fn columns_are_prefixes_of_nothing_else() {
        // A walk ends when an OID leaves its column; no two walked columns may nest.
        let columns: [Oid; 20] = [
            IF_DESCR,
            IF_TYPE,
            IF_ADMIN_STATUS,
            IF_OPER_STATUS,
            IF_IN_OCTETS,
            IF_IN_DISCARDS,
            IF_IN_ERRORS,
            IF_OUT_OCTETS,
            IF_OUT_DISCARDS,
            IF_OUT_ERRORS,
            IF_NAME,
            IF_HC_IN_OCTETS,
            IF_HC_OUT_OCTETS,
            HR_PROCESSOR_LOAD,
            HR_STORAGE_TYPE,
            HR_STORAGE_UNITS,
            HR_STORAGE_SIZE,
            HR_STORAGE_USED,
            MTXR_GAUGE_NAME,
            MTXR_GAUGE_VALUE,
        ];
        for (i, a) in columns.iter().enumerate() {
            for (j, b) in columns.iter().enumerate() {
                assert!(
                    i == j || !b.starts_with(a),
                    "{} nests in {}",
                    dotted(b),
                    dotted(a)
                );
            }
        }
    }
}
