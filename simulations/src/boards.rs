//! Hardware facts of MikroTik boards, so `/system/resource` and `/system/health` answer
//! what the named model really has (CPU, memory, storage, sensors).

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// What a board model is made of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoardProfile {
    /// Model prefix this profile applies to (`RB5009` covers `RB5009UG+S+IN`).
    pub prefix: &'static str,
    /// `/system/resource` `cpu`.
    pub cpu: &'static str,
    pub cpu_count: u32,
    pub cpu_frequency_mhz: u32,
    /// `/system/resource` `architecture-name`.
    pub architecture: &'static str,
    pub total_memory: u64,
    pub total_hdd: u64,
    /// Typical idle board temperature in °C; `None` for boards without sensors (CHR).
    pub idle_temperature_c: Option<f64>,
    /// Supply voltage the board reports.
    pub voltage_v: f64,
    pub fans: u8,
    /// Whether it is RouterBOARD hardware (`/system/routerboard` `routerboard`).
    pub routerboard: bool,
}

/// A mid-range ARM64 RouterBOARD; the other profiles say how they differ from it.
const ARM64: BoardProfile = BoardProfile {
    prefix: "",
    cpu: "ARM64",
    cpu_count: 4,
    cpu_frequency_mhz: 1400,
    architecture: "arm64",
    total_memory: GIB,
    total_hdd: 128 * MIB,
    idle_temperature_c: Some(40.0),
    voltage_v: 24.0,
    fans: 0,
    routerboard: true,
};

/// The Tilera-based CCR1000 series (RouterOS 6 era).
const TILE: BoardProfile = BoardProfile {
    cpu: "tilegx",
    architecture: "tile",
    ..ARM64
};

/// Older ARMv7 boards and switches.
const ARMV7: BoardProfile = BoardProfile {
    cpu: "ARMv7",
    architecture: "arm",
    ..ARM64
};

const BOARDS: &[BoardProfile] = &[
    BoardProfile {
        prefix: "CCR2216",
        cpu_count: 16,
        cpu_frequency_mhz: 2000,
        total_memory: 16 * GIB,
        idle_temperature_c: Some(44.0),
        voltage_v: 12.1,
        fans: 4,
        ..ARM64
    },
    BoardProfile {
        prefix: "CCR2116",
        cpu_count: 16,
        cpu_frequency_mhz: 2000,
        total_memory: 16 * GIB,
        idle_temperature_c: Some(41.0),
        voltage_v: 12.0,
        fans: 2,
        ..ARM64
    },
    BoardProfile {
        prefix: "CCR2004",
        cpu_frequency_mhz: 1700,
        total_memory: 4 * GIB,
        idle_temperature_c: Some(38.0),
        voltage_v: 24.1,
        fans: 2,
        ..ARM64
    },
    BoardProfile {
        prefix: "CCR1072",
        cpu_count: 72,
        cpu_frequency_mhz: 1000,
        total_memory: 16 * GIB,
        idle_temperature_c: Some(46.0),
        voltage_v: 12.0,
        fans: 4,
        ..TILE
    },
    BoardProfile {
        prefix: "CCR1036",
        cpu_count: 36,
        cpu_frequency_mhz: 1200,
        total_memory: 4 * GIB,
        idle_temperature_c: Some(43.0),
        voltage_v: 24.2,
        fans: 2,
        ..TILE
    },
    BoardProfile {
        prefix: "CCR1016",
        cpu_count: 16,
        cpu_frequency_mhz: 1200,
        total_memory: 2 * GIB,
        voltage_v: 24.2,
        fans: 2,
        ..TILE
    },
    BoardProfile {
        prefix: "CCR1009",
        cpu_count: 9,
        cpu_frequency_mhz: 1200,
        total_memory: 2 * GIB,
        idle_temperature_c: Some(39.0),
        ..TILE
    },
    BoardProfile {
        prefix: "RB5009",
        total_hdd: GIB,
        idle_temperature_c: Some(36.0),
        voltage_v: 24.3,
        ..ARM64
    },
    BoardProfile {
        prefix: "RB4011",
        total_hdd: 512 * MIB,
        idle_temperature_c: Some(37.0),
        voltage_v: 24.1,
        ..ARMV7
    },
    BoardProfile {
        prefix: "CRS3",
        cpu_count: 1,
        cpu_frequency_mhz: 800,
        total_memory: 512 * MIB,
        total_hdd: 16 * MIB,
        idle_temperature_c: Some(35.0),
        ..ARMV7
    },
    BoardProfile {
        prefix: "CHR",
        cpu: "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz",
        cpu_frequency_mhz: 2100,
        architecture: "x86_64",
        total_memory: 4 * GIB,
        total_hdd: GIB,
        idle_temperature_c: None,
        voltage_v: 0.0,
        routerboard: false,
        ..ARM64
    },
];

/// A board nobody listed: a mid-range ARM64 router.
const GENERIC: BoardProfile = ARM64;

/// The profile of a board model (by prefix, case-insensitive), or a generic ARM64 one.
pub fn profile(board: &str) -> &'static BoardProfile {
    let upper = board.to_ascii_uppercase();
    BOARDS
        .iter()
        .find(|b| upper.starts_with(b.prefix))
        .unwrap_or(&GENERIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown_boards() {
        assert_eq!(profile("CCR2216-1G-12XS-2XQ").cpu_count, 16);
        assert_eq!(profile("RB5009UG+S+IN").total_memory, GIB);
        assert_eq!(profile("ccr1036-8G-2S+").architecture, "tile");
        assert!(!profile("CHR").routerboard);
        assert!(profile("CHR").idle_temperature_c.is_none());
        assert_eq!(profile("hAP ax3").cpu, "ARM64");
    }
}
