//! A synthetic ELF executable for tests: [`Elf`] builds the 64-byte ELF64
//! header (class, data encoding, type, machine), optionally the glibc
//! version needs a linker writes (`.gnu.version_r`), and a tail of marker
//! bytes that makes two builds differ. The emulators run no code, and the
//! artifact checks read only the header and the version needs, so this is
//! all a test needs of a function's `bootstrap`.
//!
//! One file, compiled only into tests and never into the shipped binary:
//! `package/mod.rs` declares it `#[cfg(test)]` for the unit tests, and the
//! integration tests include the same file with
//! `#[path = "../../src/package/elf_fixture.rs"]` (they link the deployer's
//! library, where a `cfg(test)` module does not exist). A `#[doc(hidden)]
//! pub` module would have made it part of the library every build compiles,
//! for tests only. It depends on nothing but `std` so that both crates can
//! compile it.

/// `e_ident[EI_CLASS]` of a 32-bit object.
pub const ELFCLASS32: u8 = 1;
/// `e_ident[EI_CLASS]` of a 64-bit object.
pub const ELFCLASS64: u8 = 2;
/// `e_ident[EI_DATA]`: little-endian.
pub const ELFDATA2LSB: u8 = 1;
/// `e_ident[EI_DATA]`: big-endian.
pub const ELFDATA2MSB: u8 = 2;
/// `e_type` of a relocatable object file.
pub const ET_REL: u16 = 1;
/// `e_type` of a position-dependent executable.
pub const ET_EXEC: u16 = 2;
/// `e_type` of a position-independent executable (or a shared object).
pub const ET_DYN: u16 = 3;
/// `e_machine` of an x86_64 executable.
pub const X86_64: u16 = 62;
/// `e_machine` of an aarch64 executable.
pub const AARCH64: u16 = 183;

const HEADER_LEN: usize = 64;

/// A synthetic ELF file, built by [`Elf::build`].
#[derive(Debug, Clone)]
pub struct Elf {
    class: u8,
    data: u8,
    elf_type: u16,
    machine: u16,
    glibc: Vec<String>,
    tail: Vec<u8>,
}

impl Elf {
    /// A correct 64-bit little-endian position-independent executable for
    /// `machine` ([`X86_64`], [`AARCH64`]) that needs no glibc and has no tail.
    pub fn executable(machine: u16) -> Self {
        Self {
            class: ELFCLASS64,
            data: ELFDATA2LSB,
            elf_type: ET_DYN,
            machine,
            glibc: Vec::new(),
            tail: Vec::new(),
        }
    }

    /// `e_ident[EI_CLASS]`: [`ELFCLASS64`] or [`ELFCLASS32`].
    pub fn class(mut self, class: u8) -> Self {
        self.class = class;
        self
    }

    /// `e_ident[EI_DATA]`: [`ELFDATA2LSB`] or [`ELFDATA2MSB`].
    pub fn data(mut self, data: u8) -> Self {
        self.data = data;
        self
    }

    /// `e_type`: [`ET_DYN`], [`ET_EXEC`], [`ET_REL`]...
    pub fn elf_type(mut self, elf_type: u16) -> Self {
        self.elf_type = elf_type;
        self
    }

    /// The version names it needs of libc.so.6 (`GLIBC_2.28`,
    /// `GLIBC_ABI_DT_RELR`...), written as a linker writes them: `.dynstr`,
    /// one Verneed entry with a Vernaux per version in `.gnu.version_r`, and
    /// the section headers (null, `.dynstr`, `.gnu.version_r`, `.shstrtab`).
    pub fn needing(mut self, versions: &[&str]) -> Self {
        self.glibc = versions.iter().map(|&version| version.to_owned()).collect();
        self
    }

    /// Bytes after everything else (code, in a real executable): a marker
    /// that makes releases differ, or text a checker must not mistake for a
    /// version need.
    pub fn tail(mut self, tail: &[u8]) -> Self {
        self.tail = tail.to_vec();
        self
    }

    /// The file's bytes: the header, the version needs if any, the tail.
    pub fn build(&self) -> Vec<u8> {
        let mut binary = vec![0u8; HEADER_LEN];
        binary[..4].copy_from_slice(b"\x7fELF");
        binary[4] = self.class;
        binary[5] = self.data;
        binary[6] = 1; // EI_VERSION
        binary[16..18].copy_from_slice(&self.elf_type.to_le_bytes());
        binary[18..20].copy_from_slice(&self.machine.to_le_bytes());
        if !self.glibc.is_empty() {
            self.append_version_needs(&mut binary);
        }
        binary.extend_from_slice(&self.tail);
        binary
    }

    fn append_version_needs(&self, binary: &mut Vec<u8>) {
        const SHT_STRTAB: u32 = 3;
        const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;
        let versions = &self.glibc;
        let push16 = |out: &mut Vec<u8>, value: u16| out.extend_from_slice(&value.to_le_bytes());
        let push32 = |out: &mut Vec<u8>, value: u32| out.extend_from_slice(&value.to_le_bytes());
        let push64 = |out: &mut Vec<u8>, value: u64| out.extend_from_slice(&value.to_le_bytes());
        let mut strings = b"\0libc.so.6\0".to_vec();
        let mut name_offsets = Vec::new();
        for version in versions {
            name_offsets.push(strings.len() as u32);
            strings.extend_from_slice(version.as_bytes());
            strings.push(0);
        }
        let section_names = b"\0.dynstr\0.gnu.version_r\0.shstrtab\0";
        let strings_offset = HEADER_LEN;
        let names_offset = strings_offset + strings.len();
        let verneed_offset = (names_offset + section_names.len()).next_multiple_of(8);
        let verneed_size = 16 + 16 * versions.len();
        let headers_offset = (verneed_offset + verneed_size).next_multiple_of(8);
        binary[0x28..0x30].copy_from_slice(&(headers_offset as u64).to_le_bytes()); // e_shoff
        binary[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
        binary[0x3c..0x3e].copy_from_slice(&4u16.to_le_bytes()); // e_shnum
        binary[0x3e..0x40].copy_from_slice(&3u16.to_le_bytes()); // e_shstrndx
        binary.extend_from_slice(&strings);
        binary.extend_from_slice(section_names);
        binary.resize(verneed_offset, 0);
        push16(binary, 1); // vn_version
        push16(binary, versions.len() as u16); // vn_cnt
        push32(binary, 1); // vn_file: "libc.so.6"
        push32(binary, 16); // vn_aux
        push32(binary, 0); // vn_next
        for (index, name) in name_offsets.iter().enumerate() {
            push32(binary, 0); // vna_hash (not checked by readers of names)
            push16(binary, 0); // vna_flags
            push16(binary, index as u16 + 2); // vna_other
            push32(binary, *name); // vna_name
            push32(binary, if index + 1 < versions.len() { 16 } else { 0 }); // vna_next
        }
        binary.resize(headers_offset, 0);
        let mut section =
            |name: u32, kind: u32, offset: usize, size: usize, link: u32, info: u32| {
                push32(binary, name);
                push32(binary, kind);
                push64(binary, 0); // sh_flags
                push64(binary, 0); // sh_addr
                push64(binary, offset as u64);
                push64(binary, size as u64);
                push32(binary, link);
                push32(binary, info);
                push64(binary, if kind == SHT_GNU_VERNEED { 8 } else { 1 }); // sh_addralign
                push64(binary, 0); // sh_entsize
            };
        section(0, 0, 0, 0, 0, 0);
        section(1, SHT_STRTAB, strings_offset, strings.len(), 0, 0);
        section(9, SHT_GNU_VERNEED, verneed_offset, verneed_size, 1, 1);
        section(24, SHT_STRTAB, names_offset, section_names.len(), 0, 0);
    }
}
