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

const fn rb(
    prefix: &'static str,
    cpu: &'static str,
    cpu_count: u32,
    cpu_frequency_mhz: u32,
    architecture: &'static str,
    total_memory: u64,
    total_hdd: u64,
    idle_temperature_c: f64,
    voltage_v: f64,
    fans: u8,
) -> BoardProfile {
    BoardProfile {
        prefix,
        cpu,
        cpu_count,
        cpu_frequency_mhz,
        architecture,
        total_memory,
        total_hdd,
        idle_temperature_c: Some(idle_temperature_c),
        voltage_v,
        fans,
        routerboard: true,
    }
}

const BOARDS: &[BoardProfile] = &[
    rb("CCR2216", "ARM64", 16, 2000, "arm64", 16 * GIB, 128 * MIB, 44.0, 12.1, 4),
    rb("CCR2116", "ARM64", 16, 2000, "arm64", 16 * GIB, 128 * MIB, 41.0, 12.0, 2),
    rb("CCR2004", "ARM64", 4, 1700, "arm64", 4 * GIB, 128 * MIB, 38.0, 24.1, 2),
    rb("CCR1072", "tilegx", 72, 1000, "tile", 16 * GIB, 128 * MIB, 46.0, 12.0, 4),
    rb("CCR1036", "tilegx", 36, 1200, "tile", 4 * GIB, 128 * MIB, 43.0, 24.2, 2),
    rb("CCR1016", "tilegx", 16, 1200, "tile", 2 * GIB, 128 * MIB, 40.0, 24.2, 2),
    rb("CCR1009", "tilegx", 9, 1200, "tile", 2 * GIB, 128 * MIB, 39.0, 24.0, 0),
    rb("RB5009", "ARM64", 4, 1400, "arm64", GIB, GIB, 36.0, 24.3, 0),
    rb("RB4011", "ARMv7", 4, 1400, "arm", GIB, 512 * MIB, 37.0, 24.1, 0),
    rb("CRS326", "ARMv7", 1, 800, "arm", 512 * MIB, 16 * MIB, 35.0, 24.0, 0),
    rb("CRS354", "ARMv7", 1, 800, "arm", 512 * MIB, 16 * MIB, 37.0, 24.0, 1),
    BoardProfile {
        prefix: "CHR",
        cpu: "Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz",
        cpu_count: 4,
        cpu_frequency_mhz: 2100,
        architecture: "x86_64",
        total_memory: 4 * GIB,
        total_hdd: GIB,
        idle_temperature_c: None,
        voltage_v: 0.0,
        fans: 0,
        routerboard: false,
    },
];

/// A board nobody listed: a mid-range ARM64 router.
const GENERIC: BoardProfile = rb("", "ARM64", 4, 1400, "arm64", GIB, 128 * MIB, 40.0, 24.0, 0);

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
