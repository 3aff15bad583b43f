//! How the `geoline` binary is linked (build.rs): its relative relocations packed as
//! DT_RELR where the build machine's glibc reads them, so that the dynamic loader does not
//! read (and keep resident) a RELA table of hundreds of kilobytes at every start.

use std::process::Command;

const PT_DYNAMIC: u32 = 2;
const DT_NULL: u64 = 0;
const DT_RELASZ: u64 = 8;
const DT_RELR: u64 = 36;

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("two bytes"))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("four bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("eight bytes"))
}

/// The (tag, value) entries of a 64-bit little-endian ELF file's dynamic section.
fn dynamic_entries(elf: &[u8]) -> Vec<(u64, u64)> {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not a 64-bit ELF file");
    assert_eq!(elf[5], 1, "not little-endian");
    let phoff = u64_at(elf, 0x20) as usize;
    let phentsize = u16_at(elf, 0x36) as usize;
    let phnum = u16_at(elf, 0x38) as usize;
    let dynamic = (0..phnum)
        .map(|i| phoff + i * phentsize)
        .find(|&ph| u32_at(elf, ph) == PT_DYNAMIC)
        .expect("a dynamically linked binary has PT_DYNAMIC");
    let (offset, size) = (
        u64_at(elf, dynamic + 0x08) as usize,
        u64_at(elf, dynamic + 0x20) as usize,
    );
    elf[offset..offset + size]
        .chunks_exact(16)
        .map(|e| (u64_at(e, 0), u64_at(e, 8)))
        .take_while(|&(tag, _)| tag != DT_NULL)
        .collect()
}

fn glibc_reads_relr() -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.trim().strip_prefix("glibc ") else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (2, 36)
}

#[test]
fn relative_relocations_are_packed_where_glibc_reads_them() {
    if !cfg!(all(
        target_os = "linux",
        target_env = "gnu",
        target_arch = "x86_64"
    )) {
        return;
    }
    let elf = std::fs::read(env!("CARGO_BIN_EXE_geoline")).expect("the geoline binary");
    let entries = dynamic_entries(&elf);
    let tag = |t: u64| entries.iter().find(|&&(tag, _)| tag == t).map(|&(_, v)| v);
    let rela_bytes = tag(DT_RELASZ).unwrap_or(0);
    if glibc_reads_relr() {
        assert!(tag(DT_RELR).is_some(), "no DT_RELR: {entries:?}");
        // What is left as RELA is the few relocations against symbols (libc's), not the
        // tens of thousands of relative ones: 24 bytes each.
        assert!(
            rela_bytes < 24 * 1000,
            "{rela_bytes} bytes of RELA relocations remain"
        );
    } else {
        assert!(tag(DT_RELR).is_none(), "DT_RELR where glibc cannot read it");
    }
}
