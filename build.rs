//! Link options of the `geoline` binary; nothing here generates code.
//!
//! Packed relative relocations (`-z pack-relative-relocs`, DT_RELR). The binary is
//! position-independent, so every pointer in its read-only data (vtables, string tables,
//! the `&'static` slices of clap, serde and tracing) is relocated by the dynamic loader at
//! start. As classic RELA entries that is 24 bytes a pointer: 34,000 of them, 830 KB of
//! table that the loader reads whole at every start and that then stays resident (file
//! pages, mapped 64 KiB around each one touched). DT_RELR says the same in a bitmap of a
//! few kilobytes: the DNS server's peak RSS on the shipped database fell by about 2 MB
//! (README, "Performance"). The code itself is unchanged; the loader does the same writes.
//!
//! glibc reads DT_RELR from 2.36 on, and the linker then marks the binary as needing
//! `GLIBC_ABI_DT_RELR`, so an older glibc refuses it at start with a clear message rather
//! than running it wrong. To keep `cargo build` producing a binary that runs where it was
//! built, the option is used only when building for the machine itself and its glibc is
//! 2.36 or newer (`getconf GNU_LIBC_VERSION`); otherwise the binary is linked as before.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if packed_relocations_supported() {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the target is the build machine, Linux with glibc 2.36 or newer.
fn packed_relocations_supported() -> bool {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return false;
    }
    // Cross-compiling: the build machine's glibc says nothing about the target's.
    if var("HOST") != var("TARGET") {
        return false;
    }
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    glibc_at_least(&String::from_utf8_lossy(&out.stdout), (2, 36))
}

/// Parses `getconf GNU_LIBC_VERSION`'s "glibc 2.36" and compares it with `(major, minor)`.
fn glibc_at_least(getconf: &str, wanted: (u32, u32)) -> bool {
    let Some(version) = getconf.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= wanted,
        _ => false,
    }
}
