//! Symbol tables: `/proc/kallsyms`, `System.map` and pre-built entries (ELF)
//! into flat columns, with the sizes, positions and ranges the kernel derives.
//!
//! Every rule here mirrors what the running kernel does, because the numbers
//! we compute are compared with numbers the kernel printed:
//!
//! * **Size** (`kernel/kallsyms.c: get_symbol_pos`, used by
//!   `kallsyms_lookup_size_offset` and therefore by every `%pS`/`%pB` frame and
//!   by livepatch's `klp_func.old_size`): the distance from a symbol to the
//!   next symbol with a *higher* address in the same table. Aliases (same
//!   address) share one size. vmlinux is one sorted table; each module is its
//!   own table (`kernel/module/kallsyms.c: find_kallsyms_symbol`), bounded by
//!   the end of the module's text, which kallsyms does not print.
//! * **sympos** (`kernel/livepatch/core.c: klp_find_callback`): the 1-based
//!   position of a symbol among all symbols of the same name in the same
//!   object (vmlinux or one module), in kallsyms order.
//! * **Functions**: text-type symbols (`t T w W`), except `__pfx_`/`__cfi_`
//!   padding (CONFIG_FUNCTION_PADDING / kCFI preambles) and linker section
//!   markers (`_stext`, `__sched_text_start`, ...). Padding and markers are
//!   still kallsyms symbols, so they still end the function before them.
//!
//! Malformed lines are counted, and the first few kept with their line number;
//! nothing is dropped silently.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// `module` value of a vmlinux symbol.
pub const NO_MODULE: u32 = u32::MAX;
/// `prev_same_name` value of the first symbol of a name.
pub const NO_SYMBOL: u32 = u32::MAX;
/// How many malformed lines are kept verbatim for the report.
pub const MALFORMED_SAMPLES: usize = 5;
/// Longest malformed line kept verbatim (bytes); longer ones are cut.
const SAMPLE_CHARS: usize = 200;
/// Granule of module text allocations: the fallback end of a module's last
/// symbol is the next page boundary (module text is page-aligned and
/// page-granular under CONFIG_STRICT_MODULE_RWX).
const PAGE_SIZE: u64 = 4096;

/// What role a symbol plays for stack analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SymbolKind {
    /// A text symbol a frame can be in (`t T w W`).
    Function = 0,
    /// `__pfx_`/`__cfi_` padding before a function: code-free, bounds the previous function.
    Padding = 1,
    /// A linker section marker such as `_etext` or `__sched_text_start`.
    Marker = 2,
    /// A data/rodata/bss symbol (`d D b B r R v V ...`).
    Data = 3,
    /// Not a kallsyms symbol for sizing: zero address, absolute, undefined,
    /// debugging or mapping symbol (`$x`, `.L*`).
    Ignored = 4,
}

impl SymbolKind {
    /// Every kind, in `repr(u8)` order (the codes of the `kind` column).
    pub const ALL: [SymbolKind; 5] = [
        SymbolKind::Function,
        SymbolKind::Padding,
        SymbolKind::Marker,
        SymbolKind::Data,
        SymbolKind::Ignored,
    ];

    /// The name reports use.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            SymbolKind::Function => "function",
            SymbolKind::Padding => "padding",
            SymbolKind::Marker => "section marker",
            SymbolKind::Data => "data",
            SymbolKind::Ignored => "ignored",
        }
    }
}

/// Which text the symbols come from (the grammar differs in one point:
/// `System.map` has no module column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SymbolFormat {
    Kallsyms,
    SystemMap,
}

impl SymbolFormat {
    /// Every symbol format.
    pub const ALL: [SymbolFormat; 2] = [SymbolFormat::Kallsyms, SymbolFormat::SystemMap];

    /// The stable name used by the Python API.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            SymbolFormat::Kallsyms => "kallsyms",
            SymbolFormat::SystemMap => "system_map",
        }
    }

    /// The format with this stable name.
    #[must_use]
    pub fn from_name(name: &str) -> Option<SymbolFormat> {
        SymbolFormat::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// One symbol handed over already parsed (e.g. from an ELF `.symtab`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolEntry {
    pub address: u64,
    /// nm-style type letter.
    pub kind_letter: u8,
    pub name: String,
    pub module: Option<String>,
    /// An explicit size (ELF `st_size`); 0 = derive it the kallsyms way.
    pub size: u64,
}

/// A symbol table, columnar. Row `i` is the `i`-th symbol in source order
/// (kallsyms order), so positions are stable and match line numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SymbolTable {
    // ---- as read
    pub address: Vec<u64>,
    /// nm-style type letter (`b'T'`, `b't'`, ...).
    pub type_letter: Vec<u8>,
    /// CSR into `names`: symbol `i` is `names[name_offsets[i]..name_offsets[i + 1]]`.
    pub name_offsets: Vec<u32>,
    pub names: String,
    /// Index into `modules`, or [`NO_MODULE`] for vmlinux.
    pub module: Vec<u32>,
    pub modules: Vec<String>,
    /// Build id printed with the module (`[mod 40hex]`), if any.
    pub module_build_ids: Vec<Option<String>>,
    /// 1-based source line (0 for entries that came from no text).
    pub line: Vec<u32>,
    // ---- derived
    pub kind: Vec<SymbolKind>,
    /// Size in bytes; 0 when the symbol takes part in no size computation.
    pub size: Vec<u64>,
    /// False when the end is a fallback bound (last symbol of a module or of
    /// the table), not the kernel's own number.
    pub size_exact: Vec<bool>,
    /// 1-based position among same-named symbols of the same object.
    pub sympos: Vec<u32>,
    /// How many symbols of the object share this name.
    pub name_count: Vec<u32>,
    /// The first function at its address in its object (kallsyms order): the
    /// name the kernel prints for addresses in that range.
    pub primary: Vec<bool>,
    /// The previous symbol (any object) with the same name, or [`NO_SYMBOL`]:
    /// a chain that lists every holder of a name from the last one back.
    pub prev_same_name: Vec<u32>,
    /// Byte length of the compiler-part parent's name (`foo` for
    /// `foo.cold`), 0 when the name has no compiler suffix.
    pub parent_len: Vec<u32>,
    /// Rows that are functions, ascending.
    pub functions: Vec<u32>,
    /// `[__sched_text_start, __sched_text_end)` of vmlinux.
    pub sched_text: Option<(u64, u64)>,
    /// `[__lock_text_start, __lock_text_end)` of vmlinux.
    pub lock_text: Option<(u64, u64)>,
    // ---- report
    pub malformed_lines: usize,
    /// `(line number, text)` of the first [`MALFORMED_SAMPLES`] malformed lines.
    pub malformed_samples: Vec<(usize, String)>,
    /// Lines starting with `#` (provenance comments of recorded files).
    pub comment_lines: usize,
    /// Text symbols whose address is 0 (left out of every range).
    pub zero_address_text: usize,
}

impl SymbolTable {
    /// Number of symbols (rows).
    #[must_use]
    pub fn len(&self) -> usize {
        self.address.len()
    }

    /// True when the table holds no symbol.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.address.is_empty()
    }

    /// The name of row `i`.
    #[must_use]
    pub fn name(&self, i: usize) -> &str {
        &self.names[self.name_offsets[i] as usize..self.name_offsets[i + 1] as usize]
    }

    /// The module name of row `i`, `None` for vmlinux.
    #[must_use]
    pub fn module_name(&self, i: usize) -> Option<&str> {
        match self.module[i] {
            NO_MODULE => None,
            m => Some(&self.modules[m as usize]),
        }
    }
}

/// Parses `/proc/kallsyms` text: `addr type name` or `addr type name\t[module]`
/// (also `[module buildid]`).
///
/// # Errors
/// [`Error::Symbols`] when no symbol line parses (naming the first bad line),
/// when there is no function, and [`Error::ZeroAddresses`] when every text
/// symbol has address 0 (`kptr_restrict`, or read without CAP_SYSLOG).
pub fn parse_kallsyms(text: &[u8]) -> Result<SymbolTable> {
    parse(text, SymbolFormat::Kallsyms)
}

/// Parses `System.map` (`addr type name`, no module column).
///
/// # Errors
/// As [`parse_kallsyms`].
pub fn parse_system_map(text: &[u8]) -> Result<SymbolTable> {
    parse(text, SymbolFormat::SystemMap)
}

/// Parses either text format.
///
/// # Errors
/// As [`parse_kallsyms`].
pub fn parse(text: &[u8], format: SymbolFormat) -> Result<SymbolTable> {
    let mut builder = Builder::with_capacity(text.len() / 40, text.len());
    // One vectorised check up front; names are split at ASCII bytes, so a
    // valid input has valid names and the per-line check can be skipped.
    let check_utf8 = std::str::from_utf8(text).is_err();
    let mut start = 0usize;
    let mut line_no = 0usize;
    while start < text.len() {
        let end = memchr::memchr(b'\n', &text[start..]).map_or(text.len(), |k| start + k);
        line_no += 1;
        builder.line(&text[start..end], line_no, format, check_utf8);
        start = end + 1;
    }
    builder.finish(None)
}

/// Builds a table from already-parsed entries (ELF symbols). Entries must be
/// in kallsyms order: address order for vmlinux, symtab order for a module,
/// since `sympos` counts in that order.
///
/// # Errors
/// As [`parse_kallsyms`] (no function, all-zero addresses), and
/// [`Error::Symbols`] when the names do not fit 32-bit offsets.
pub fn from_entries(entries: &[SymbolEntry]) -> Result<SymbolTable> {
    let bytes: usize = entries.iter().map(|e| e.name.len()).sum();
    let mut builder = Builder::with_capacity(entries.len(), bytes);
    let mut sizes = Vec::with_capacity(entries.len());
    for e in entries {
        let module = e.module.as_deref().map(|m| builder.module_index(m, None));
        builder.push(e.address, e.kind_letter, e.name.as_bytes(), module, 0);
        sizes.push(e.size);
    }
    builder.finish(Some(&sizes))
}

// ---------------------------------------------------------------------------
// Line grammar

/// One parsed line: `(address, type, name, module, build id)`.
type LineFields<'a> = (u64, u8, &'a [u8], Option<&'a str>, Option<&'a str>);

/// Value of each byte as a hex digit, `INVALID` for other bytes.
const HEX_VALUE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut c = 0;
    while c < 10 {
        table[b'0' as usize + c] = c as u8;
        c += 1;
    }
    let mut c = 0;
    while c < 6 {
        table[b'a' as usize + c] = 10 + c as u8;
        table[b'A' as usize + c] = 10 + c as u8;
        c += 1;
    }
    table
};
const INVALID: u8 = 0xff;

/// Hex digits of an address; `None` unless 1..=16 hex digits.
fn parse_hex(field: &[u8]) -> Option<u64> {
    if field.is_empty() || field.len() > 16 {
        return None;
    }
    let mut value = 0u64;
    let mut bad = 0u8;
    for &c in field {
        let digit = HEX_VALUE[c as usize];
        // Branch-free: remember any invalid digit, decide once at the end.
        bad |= digit & 0x80;
        value = (value << 4) | u64::from(digit & 0x0f);
    }
    (bad == 0).then_some(value)
}

/// Splits off the next run of non-blank bytes; `rest` starts after it.
fn next_field(s: &[u8]) -> (&[u8], &[u8]) {
    let start = s
        .iter()
        .position(|c| !matches!(c, b' ' | b'\t'))
        .unwrap_or(s.len());
    let s = &s[start..];
    let end = s
        .iter()
        .position(|c| matches!(c, b' ' | b'\t'))
        .unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// The kernel prints `%px %c %s` and, for modules, `\t[%s]`
/// (kernel/kallsyms.c: s_show). Anything else is malformed; the reason is
/// returned for the report.
fn parse_line(
    line: &[u8],
    format: SymbolFormat,
    check_utf8: bool,
) -> std::result::Result<LineFields<'_>, &'static str> {
    // The kernel's own layout (`%px` is 16 digits on 64-bit) splits at fixed
    // places; anything else takes the general path.
    let (addr, rest) = if line.len() > 19 && line[16] == b' ' && line[18] != b' ' {
        (&line[..16], &line[16..])
    } else {
        next_field(line)
    };
    let address = parse_hex(addr).ok_or("address is not 1-16 hex digits")?;
    let (kind, rest) = next_field(rest);
    let &[letter] = kind else {
        return Err("type is not one letter");
    };
    if !letter.is_ascii_alphabetic() && letter != b'?' {
        return Err("type is not a letter");
    }
    let (name, rest) = next_field(rest);
    if name.is_empty() {
        return Err("no name");
    }
    if check_utf8 && std::str::from_utf8(name).is_err() {
        return Err("name is not UTF-8");
    }
    let rest = trim_blank(rest);
    if rest.is_empty() {
        return Ok((address, letter, name, None, None));
    }
    if format == SymbolFormat::SystemMap {
        return Err("text after the name (System.map has no module column)");
    }
    let inner = rest
        .strip_prefix(b"[")
        .and_then(|r| r.strip_suffix(b"]"))
        .ok_or("text after the name is not [module]")?;
    let inner = std::str::from_utf8(inner).map_err(|_| "module is not UTF-8")?;
    let mut words = inner.split_ascii_whitespace();
    let module = words.next().ok_or("empty [module]")?;
    let build_id = words.next();
    if words.next().is_some() || module.contains(['[', ']']) {
        return Err("[module] holds more than a name and a build id");
    }
    if let Some(id) = build_id {
        if !id.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err("module build id is not hex");
        }
    }
    Ok((address, letter, name, Some(module), build_id))
}

fn trim_blank(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |k| k + 1);
    &s[start..end.max(start)]
}

// ---------------------------------------------------------------------------
// Classification

/// `t T w W`: what `/proc/kallsyms` prints for code.
#[must_use]
pub fn is_text_type(letter: u8) -> bool {
    matches!(letter, b't' | b'T' | b'w' | b'W')
}

/// Types scripts/kallsyms.c never puts in the kallsyms table (absolute,
/// undefined, debugging), so they must not end another symbol.
fn is_sizing_excluded_type(letter: u8) -> bool {
    matches!(letter, b'A' | b'a' | b'U' | b'u' | b'N' | b'n' | b'?')
}

/// ELF mapping symbols (`$x`, `$d`, ...) and assembler locals (`.L*`, `L0`),
/// which the kernel skips (include/linux/module_symbol.h: is_mapping_symbol).
fn is_mapping_symbol(name: &str) -> bool {
    name.starts_with('$') || name.starts_with(".L") || name.starts_with("L0")
}

/// `__pfx_` (CONFIG_FUNCTION_PADDING, 6.2+) and `__cfi_` (kCFI) symbols mark
/// the NOP padding in front of a function: no frame can be "in" them.
#[must_use]
pub fn is_padding_name(name: &str) -> bool {
    name.starts_with("__pfx_") || name.starts_with("__cfi_")
}

/// Linker-script section boundaries (include/asm-generic/sections.h and
/// vmlinux.lds.h): `_text _stext _etext _sinittext _einittext` and the
/// `__<section>_text_start/_end` pairs. Position-independent aliases
/// (`__pi_` prefix, x86 startup code) of these count too.
#[must_use]
pub fn is_marker_name(name: &str) -> bool {
    let name = name.strip_prefix("__pi_").unwrap_or(name);
    if matches!(
        name,
        "_text" | "_stext" | "_etext" | "_sinittext" | "_einittext"
    ) {
        return true;
    }
    let Some(inner) = name.strip_prefix("__") else {
        return false;
    };
    let Some(section) = inner
        .strip_suffix("_text_start")
        .or_else(|| inner.strip_suffix("_text_end"))
    else {
        return false;
    };
    !section.is_empty()
        && section
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn classify(letter: u8, address: u64, name: &str) -> SymbolKind {
    if address == 0 || is_sizing_excluded_type(letter) || is_mapping_symbol(name) {
        return SymbolKind::Ignored;
    }
    if !is_text_type(letter) {
        return SymbolKind::Data;
    }
    if is_padding_name(name) {
        SymbolKind::Padding
    } else if is_marker_name(name) {
        SymbolKind::Marker
    } else {
        SymbolKind::Function
    }
}

/// The compiler-made suffixes of stack-formats.md §10: `.cold` / `.cold.N`
/// (GCC's unlikely half), `.part.N` (partial inlining), `.isra.N`,
/// `.constprop.N` (clones) and `.llvm.N` (ThinLTO promotion).
const PART_TAGS: [&str; 5] = ["cold", "part", "isra", "constprop", "llvm"];

/// Splits the last compiler suffix off a name: `("foo", "cold")` for
/// `foo.cold` or `foo.cold.3`, `("foo.isra.0", "cold")` for
/// `foo.isra.0.cold`, `None` for a name without one.
#[must_use]
pub fn compiler_parent(name: &str) -> Option<(&str, &'static str)> {
    // Most names end in neither: skip the backwards scans for them.
    if !name.ends_with(|c: char| c.is_ascii_digit()) && !name.ends_with(".cold") {
        return None;
    }
    if let Some(parent) = name.strip_suffix(".cold") {
        return (!parent.is_empty()).then_some((parent, "cold"));
    }
    let (before, number) = name.rsplit_once('.')?;
    if number.is_empty() || !number.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (parent, tag) = before.rsplit_once('.')?;
    let tag = PART_TAGS.into_iter().find(|&t| t == tag)?;
    (!parent.is_empty()).then_some((parent, tag))
}

// ---------------------------------------------------------------------------
// Name index

/// Every row of a name, found by hashing: an open-addressing table of row ids
/// (the last row of each name) over the table's own name storage, so that
/// building it allocates no string and a lookup costs one hash and a compare
/// or two. The earlier rows of a name follow `prev_same_name`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameIndex {
    /// Row id per slot, [`NO_SYMBOL`] when empty; at most half full.
    slots: Vec<u32>,
}

fn name_slot_hash(name: &str) -> u64 {
    let mut h = FxHasher::default();
    h.write(name.as_bytes());
    h.finish()
}

impl NameIndex {
    /// Indexes the names of `t` (its `prev_same_name` must be computed).
    #[must_use]
    pub fn new(t: &SymbolTable) -> Self {
        let capacity = (t.len() * 2).next_power_of_two().max(16);
        let mask = capacity - 1;
        // Only the last row of each name goes in; the chain finds the others.
        let mut has_later = vec![false; t.len()];
        for &prev in &t.prev_same_name {
            if prev != NO_SYMBOL {
                has_later[prev as usize] = true;
            }
        }
        let mut slots = vec![NO_SYMBOL; capacity];
        for (row, _) in has_later.iter().enumerate().filter(|(_, &later)| !later) {
            let mut i = name_slot_hash(t.name(row)) as usize & mask;
            while slots[i] != NO_SYMBOL {
                i = (i + 1) & mask;
            }
            slots[i] = u32::try_from(row).expect("rows fit u32 (checked at build)");
        }
        Self { slots }
    }

    /// The last row named `name`, if any.
    #[must_use]
    pub fn last_row(&self, t: &SymbolTable, name: &str) -> Option<u32> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut i = name_slot_hash(name) as usize & mask;
        loop {
            match self.slots[i] {
                NO_SYMBOL => return None,
                row if t.name(row as usize) == name => return Some(row),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Every row named `name`, any object, in table (kallsyms) order.
    #[must_use]
    pub fn rows(&self, t: &SymbolTable, name: &str) -> Vec<u32> {
        let mut rows = Vec::new();
        let mut row = self.last_row(t, name).unwrap_or(NO_SYMBOL);
        while row != NO_SYMBOL {
            rows.push(row);
            row = t.prev_same_name[row as usize];
        }
        rows.reverse();
        rows
    }
}

// ---------------------------------------------------------------------------
// Builder

/// FxHash (rustc's hasher): symbol names are trusted, short and numerous,
/// so a multiply-rotate hash beats SipHash by several times here.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let word = u64::from_le_bytes(c.try_into().expect("8-byte chunk"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(SEED);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write(&n.to_le_bytes());
    }
    fn write_u8(&mut self, n: u8) {
        self.write(&[n]);
    }
    fn write_usize(&mut self, n: usize) {
        self.write(&n.to_le_bytes());
    }
    fn finish(&self) -> u64 {
        // The multiply leaves the low bits weakest, and hashbrown indexes
        // buckets with the low bits: rotate the well-mixed high bits down.
        self.0.rotate_left(26)
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

struct Builder {
    table: SymbolTable,
    module_index: FxMap<String, u32>,
    /// The names, validated as UTF-8 once in `finish` (or per line when the
    /// input as a whole is not UTF-8).
    name_bytes: Vec<u8>,
}

impl Builder {
    fn with_capacity(rows: usize, name_bytes: usize) -> Self {
        let mut table = SymbolTable::default();
        table.address.reserve(rows);
        table.type_letter.reserve(rows);
        table.name_offsets.reserve(rows + 1);
        table.name_offsets.push(0);
        table.module.reserve(rows);
        table.line.reserve(rows);
        Self {
            table,
            module_index: FxMap::default(),
            name_bytes: Vec::with_capacity(name_bytes),
        }
    }

    fn module_index(&mut self, name: &str, build_id: Option<&str>) -> u32 {
        if let Some(&m) = self.module_index.get(name) {
            let slot = &mut self.table.module_build_ids[m as usize];
            if slot.is_none() {
                *slot = build_id.map(str::to_owned);
            }
            return m;
        }
        let m = u32::try_from(self.table.modules.len()).expect("fewer than 2^32 modules");
        self.table.modules.push(name.to_owned());
        self.table
            .module_build_ids
            .push(build_id.map(str::to_owned));
        self.module_index.insert(name.to_owned(), m);
        m
    }

    fn push(&mut self, address: u64, letter: u8, name: &[u8], module: Option<u32>, line: usize) {
        let t = &mut self.table;
        t.address.push(address);
        t.type_letter.push(letter);
        self.name_bytes.extend_from_slice(name);
        // Overflow is checked once in `finish`; saturate until then.
        t.name_offsets
            .push(u32::try_from(self.name_bytes.len()).unwrap_or(u32::MAX));
        t.module.push(module.unwrap_or(NO_MODULE));
        t.line.push(u32::try_from(line).unwrap_or(u32::MAX));
    }

    fn line(&mut self, raw: &[u8], line_no: usize, format: SymbolFormat, check_utf8: bool) {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let content = trim_blank(raw);
        if content.is_empty() {
            return;
        }
        if content[0] == b'#' {
            self.table.comment_lines += 1;
            return;
        }
        match parse_line(content, format, check_utf8) {
            Ok((address, letter, name, module, build_id)) => {
                let module = module.map(|m| self.module_index(m, build_id));
                self.push(address, letter, name, module, line_no);
            }
            Err(reason) => self.malformed(raw, line_no, reason),
        }
    }

    fn malformed(&mut self, raw: &[u8], line_no: usize, reason: &str) {
        let t = &mut self.table;
        t.malformed_lines += 1;
        if t.malformed_samples.len() < MALFORMED_SAMPLES {
            let text = String::from_utf8_lossy(&raw[..raw.len().min(SAMPLE_CHARS)]);
            t.malformed_samples
                .push((line_no, format!("{reason}: {text:?}")));
        }
    }

    fn finish(self, explicit_sizes: Option<&[u64]>) -> Result<SymbolTable> {
        let mut t = self.table;
        t.names = String::from_utf8(self.name_bytes).map_err(|_| Error::Symbols {
            line: None,
            message: "symbol names are not UTF-8".to_owned(),
        })?;
        if u32::try_from(t.names.len()).is_err() || u32::try_from(t.len()).is_err() {
            return Err(Error::Symbols {
                line: None,
                message: format!(
                    "{} symbols with {} name bytes: more than 32-bit offsets can index",
                    t.len(),
                    t.names.len()
                ),
            });
        }
        check_usable(&t)?;
        t.kind = (0..t.len())
            .map(|i| classify(t.type_letter[i], t.address[i], t.name(i)))
            .collect();
        t.zero_address_text = (0..t.len())
            .filter(|&i| t.address[i] == 0 && is_text_type(t.type_letter[i]))
            .count();
        compute_sizes(&mut t, explicit_sizes);
        compute_positions(&mut t);
        t.parent_len = (0..t.len())
            .map(|i| match (t.kind[i], compiler_parent(t.name(i))) {
                (SymbolKind::Function, Some((parent, _))) => parent.len() as u32,
                _ => 0,
            })
            .collect();
        t.functions = (0..t.len() as u32)
            .filter(|&i| t.kind[i as usize] == SymbolKind::Function)
            .collect();
        if t.functions.is_empty() {
            return Err(Error::Symbols {
                line: None,
                message: format!(
                    "no function among {} symbols (no text symbol of type t, T, w or W \
                     other than padding and section markers)",
                    t.len()
                ),
            });
        }
        t.sched_text = vmlinux_range(&t, "__sched_text_start", "__sched_text_end");
        t.lock_text = vmlinux_range(&t, "__lock_text_start", "__lock_text_end");
        Ok(t)
    }
}

/// A table with no symbol or only zero text addresses cannot answer any
/// question about a stack: refuse it loudly (`finish` also refuses a table
/// without a function).
fn check_usable(t: &SymbolTable) -> Result<()> {
    if t.is_empty() {
        let message = match t.malformed_samples.first() {
            Some((line, text)) => {
                return Err(Error::Symbols {
                    line: Some(*line),
                    message: format!(
                        "no symbol line parsed ({} malformed lines; first: {text})",
                        t.malformed_lines
                    ),
                })
            }
            None => "no symbols (empty input)".to_owned(),
        };
        return Err(Error::Symbols {
            line: None,
            message,
        });
    }
    let mut text = 0usize;
    let mut nonzero = 0usize;
    for (&letter, &address) in t.type_letter.iter().zip(&t.address) {
        if is_text_type(letter) {
            text += 1;
            nonzero += usize::from(address != 0);
        }
    }
    if text > 0 && nonzero == 0 {
        return Err(Error::ZeroAddresses { symbols: text });
    }
    Ok(())
}

/// Object id used for grouping: modules by index, vmlinux last.
fn object_of(t: &SymbolTable, i: usize) -> u32 {
    t.module[i]
}

/// Sizes the way the kernel does (see the module docs), into `t.size`,
/// `t.size_exact` and `t.primary`.
fn compute_sizes(t: &mut SymbolTable, explicit: Option<&[u64]>) {
    let n = t.len();
    t.size = vec![0; n];
    t.size_exact = vec![false; n];
    t.primary = vec![false; n];
    // Rows that take part in sizing, ordered by (object, address, row).
    // vmlinux arrives sorted and each module contiguous, so the sort mostly
    // verifies runs.
    let mut order: Vec<u32> = (0..n as u32)
        .filter(|&i| t.kind[i as usize] != SymbolKind::Ignored)
        .collect();
    order.sort_by_key(|&i| (object_of(t, i as usize), t.address[i as usize]));
    // Every sizing address in the table, for the fallback bound.
    let mut all_addresses: Vec<u64> = order.iter().map(|&i| t.address[i as usize]).collect();
    all_addresses.sort_unstable();
    all_addresses.dedup();

    let mut group = 0usize;
    while group < order.len() {
        let first = order[group] as usize;
        let (object, address) = (object_of(t, first), t.address[first]);
        let mut end = group + 1;
        while end < order.len()
            && object_of(t, order[end] as usize) == object
            && t.address[order[end] as usize] == address
        {
            end += 1;
        }
        let next_in_object = (end < order.len() && object_of(t, order[end] as usize) == object)
            .then(|| &order[end..])
            .map(|rest| {
                let next_address = t.address[rest[0] as usize];
                let next_is_text = rest
                    .iter()
                    .take_while(|&&j| {
                        object_of(t, j as usize) == object && t.address[j as usize] == next_address
                    })
                    .any(|&j| is_text_type(t.type_letter[j as usize]));
                (next_address, next_is_text)
            });
        let (size, exact) = kernel_size(address, object, next_in_object, &all_addresses);
        let mut primary_taken = false;
        for &row in &order[group..end] {
            let row = row as usize;
            t.size[row] = size;
            t.size_exact[row] = exact;
            if t.kind[row] == SymbolKind::Function && !primary_taken {
                t.primary[row] = true;
                primary_taken = true;
            }
        }
        group = end;
    }
    if let Some(explicit) = explicit {
        for (row, &size) in explicit.iter().enumerate() {
            if size > 0 {
                t.size[row] = size;
                t.size_exact[row] = true;
            }
        }
    }
}

/// One symbol's size: to the next higher address in its object
/// (kernel/kallsyms.c: get_symbol_pos for vmlinux, kernel/module/kallsyms.c:
/// find_kallsyms_symbol for modules). The kernel ends a module's last symbol
/// at the end of the module text, which kallsyms does not show; the same
/// happens when the next module symbol is data (module data lives in other
/// allocations). Then we bound by the next page boundary and by the next
/// symbol anywhere, and say the size is not exact.
fn kernel_size(
    address: u64,
    object: u32,
    next_in_object: Option<(u64, bool)>,
    all_addresses: &[u64],
) -> (u64, bool) {
    match next_in_object {
        Some((next, _)) if object == NO_MODULE => (next - address, true),
        Some((next, true)) => (next - address, true),
        other => {
            let page_end = (address | (PAGE_SIZE - 1)).saturating_add(1);
            let above = all_addresses.partition_point(|&a| a <= address);
            let next_anywhere = all_addresses.get(above).copied().unwrap_or(u64::MAX);
            let next_data = other.map_or(u64::MAX, |(next, _)| next);
            let end = page_end.min(next_anywhere).min(next_data);
            (end.saturating_sub(address).max(1), false)
        }
    }
}

/// `sympos`, `name_count` (per object, kallsyms order; every symbol type
/// counts, as in klp_find_callback) and `prev_same_name` (any object).
///
/// One hash lookup per symbol links each symbol to the previous one of its
/// name; positions and counts then follow those (almost always one-long)
/// chains, which keeps the pass at one cache miss per symbol.
fn compute_positions(t: &mut SymbolTable) {
    let n = t.len();
    let mut last_of_name: FxMap<&str, u32> = FxMap::default();
    last_of_name.reserve(n);
    let mut prev = Vec::with_capacity(n);
    for i in 0..n {
        prev.push(
            last_of_name
                .insert(t.name(i), i as u32)
                .unwrap_or(NO_SYMBOL),
        );
    }
    drop(last_of_name);
    // The nearest earlier symbol of the same name *and object*.
    let same_object_before = |i: usize| {
        let mut p = prev[i];
        while p != NO_SYMBOL && t.module[p as usize] != t.module[i] {
            p = prev[p as usize];
        }
        p
    };
    let mut sympos = vec![1u32; n];
    let mut later_same = vec![NO_SYMBOL; n];
    for i in 0..n {
        let p = same_object_before(i);
        if p != NO_SYMBOL {
            sympos[i] = sympos[p as usize] + 1;
            later_same[p as usize] = i as u32;
        }
    }
    // Walking backwards, the last symbol of a name in an object knows the count.
    let mut name_count = vec![0u32; n];
    for i in (0..n).rev() {
        name_count[i] = match later_same[i] {
            NO_SYMBOL => sympos[i],
            j => name_count[j as usize],
        };
    }
    t.sympos = sympos;
    t.name_count = name_count;
    t.prev_same_name = prev;
}

/// `[start, end)` between two vmlinux section markers, if both exist.
fn vmlinux_range(t: &SymbolTable, start: &str, end: &str) -> Option<(u64, u64)> {
    // Only the few marker rows can match: skip the name compare elsewhere.
    let find = |wanted: &str| {
        (0..t.len()).find(|&i| {
            t.kind[i] == SymbolKind::Marker && t.module[i] == NO_MODULE && t.name(i) == wanted
        })
    };
    let (s, e) = (t.address[find(start)?], t.address[find(end)?]);
    (s < e).then_some((s, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_index_finds_every_row_of_a_name_in_order() {
        let text = "ffffffff81000000 T _stext\n\
                    ffffffff81000010 t init_once\n\
                    ffffffff81000020 T worker_thread\n\
                    ffffffff81000030 t init_once\n\
                    ffffffffc0000000 t init_once\t[ext4]\n\
                    ffffffffc0000010 t ext4_fill_super\t[ext4]\n";
        let t = parse_kallsyms(text.as_bytes()).unwrap();
        let index = NameIndex::new(&t);
        for row in 0..t.len() {
            let want: Vec<u32> = (0..t.len() as u32)
                .filter(|&r| t.name(r as usize) == t.name(row))
                .collect();
            assert_eq!(index.rows(&t, t.name(row)), want, "{}", t.name(row));
        }
        assert_eq!(index.rows(&t, "init_once"), vec![1, 3, 4]);
        assert!(index.rows(&t, "missing").is_empty());
        assert!(index.rows(&t, "").is_empty());
        assert!(NameIndex::default().rows(&t, "init_once").is_empty());
    }

    fn parse_ok(text: &str) -> SymbolTable {
        parse_kallsyms(text.as_bytes()).expect("parses")
    }

    fn row(t: &SymbolTable, name: &str) -> usize {
        (0..t.len()).find(|&i| t.name(i) == name).expect(name)
    }

    const SAMPLE: &str = "\
ffffffff81000000 T _stext
ffffffff81000000 T first_func
ffffffff81000010 T __pfx_second
ffffffff81000020 T second
ffffffff81000020 t second_alias
ffffffff81000050 t __pfx_dup
ffffffff81000060 t dup
ffffffff81000080 t dup
ffffffff81000100 T __sched_text_start
ffffffff81000100 T schedule
ffffffff81000180 T __sched_text_end
ffffffff81000200 T _etext
ffffffffc0001000 t dup\t[mod_a]
ffffffffc0001040 t mod_fn\t[mod_a]
ffffffffc0000f00 d mod_data\t[mod_a]
ffffffffc0003000 t other_fn\t[mod_b 0123456789abcdef0123456789abcdef01234567]
";

    #[test]
    fn sizes_follow_the_next_higher_address() {
        let t = parse_ok(SAMPLE);
        assert_eq!(t.len(), 16);
        assert_eq!(t.malformed_lines, 0);
        assert_eq!(t.size[row(&t, "first_func")], 0x10, "ends at __pfx_second");
        assert_eq!(t.size[row(&t, "second")], 0x30);
        assert_eq!(
            t.size[row(&t, "second_alias")],
            0x30,
            "aliases share the size"
        );
        assert_eq!(t.size[5], 0x10, "__pfx_dup");
        assert_eq!(t.size[6], 0x20, "first dup ends at the second");
        assert_eq!(t.size[7], 0x80, "second dup ends at __sched_text_start");
        assert_eq!(t.size[row(&t, "schedule")], 0x80);
        assert_eq!(
            t.size[row(&t, "__sched_text_end")],
            0x80,
            "marker ends at _etext"
        );
        assert!(t.size_exact[row(&t, "schedule")]);
    }

    #[test]
    fn module_symbols_size_within_their_module() {
        let t = parse_ok(SAMPLE);
        let dup_mod = 12;
        assert_eq!(t.module_name(dup_mod), Some("mod_a"));
        // mod_data sits below; mod_fn is the next higher text symbol.
        assert_eq!(t.size[dup_mod], 0x40);
        assert!(t.size_exact[dup_mod]);
        // mod_fn is the module's last symbol: bounded by the page, inexact.
        let last = row(&t, "mod_fn");
        assert_eq!(t.size[last], 0xffff_ffff_c000_2000 - 0xffff_ffff_c000_1040);
        assert!(!t.size_exact[last]);
        let other = row(&t, "other_fn");
        assert_eq!(t.module_name(other), Some("mod_b"));
        assert_eq!(
            t.module_build_ids[t.module[other] as usize].as_deref(),
            Some("0123456789abcdef0123456789abcdef01234567")
        );
        assert_eq!(t.size[other], 0x1000);
        // _etext is vmlinux's last symbol: the fallback stops at the page end.
        let etext = row(&t, "_etext");
        assert_eq!(t.size[etext], 0xe00);
        assert!(!t.size_exact[etext]);
    }

    #[test]
    fn kinds_and_primaries() {
        let t = parse_ok(SAMPLE);
        assert_eq!(t.kind[row(&t, "_stext")], SymbolKind::Marker);
        assert_eq!(t.kind[row(&t, "__pfx_second")], SymbolKind::Padding);
        assert_eq!(t.kind[row(&t, "__sched_text_start")], SymbolKind::Marker);
        assert_eq!(t.kind[row(&t, "mod_data")], SymbolKind::Data);
        assert_eq!(t.kind[row(&t, "first_func")], SymbolKind::Function);
        assert!(
            t.primary[row(&t, "first_func")],
            "the marker before it is no function"
        );
        assert!(t.primary[row(&t, "second")]);
        assert!(!t.primary[row(&t, "second_alias")]);
        assert_eq!(t.functions.len(), 9);
        assert_eq!(
            t.sched_text,
            Some((0xffff_ffff_8100_0100, 0xffff_ffff_8100_0180))
        );
        assert_eq!(t.lock_text, None);
    }

    #[test]
    fn sympos_counts_per_object_in_kallsyms_order() {
        let t = parse_ok(SAMPLE);
        let dups: Vec<usize> = (0..t.len()).filter(|&i| t.name(i) == "dup").collect();
        assert_eq!(dups, vec![6, 7, 12]);
        assert_eq!((t.sympos[6], t.name_count[6]), (1, 2));
        assert_eq!((t.sympos[7], t.name_count[7]), (2, 2));
        assert_eq!((t.sympos[12], t.name_count[12]), (1, 1), "another object");
        assert_eq!(t.prev_same_name[12], 7);
        assert_eq!(t.prev_same_name[7], 6);
        assert_eq!(t.prev_same_name[6], NO_SYMBOL);
    }

    #[test]
    fn malformed_lines_are_counted_with_line_numbers() {
        let text = "# provenance comment\n\
                    ffffffff81000000 T a\n\
                    zzzz T b\n\
                    ffffffff81000010 TT c\n\
                    \n\
                    ffffffff81000020 T\n\
                    ffffffff81000030 T d [mod\n\
                    ffffffff81000040 T e\r\n";
        let t = parse_ok(text);
        assert_eq!(t.len(), 2);
        assert_eq!(t.comment_lines, 1);
        assert_eq!(t.malformed_lines, 4);
        let lines: Vec<usize> = t.malformed_samples.iter().map(|s| s.0).collect();
        assert_eq!(lines, vec![3, 4, 6, 7]);
        assert!(t.malformed_samples[0].1.contains("zzzz"));
        assert_eq!(t.name(1), "e", "CR stripped");
        assert_eq!(t.line, vec![2, 8]);
    }

    #[test]
    fn hex_addresses() {
        assert_eq!(parse_hex(b"ffffffffc0201000"), Some(0xffff_ffff_c020_1000));
        assert_eq!(parse_hex(b"DEADbeef"), Some(0xdead_beef));
        assert_eq!(parse_hex(b"0"), Some(0));
        for bad in [
            &b""[..],
            b"ffffffff8100004g",
            b"12 4",
            b"0x10",
            b"11112222333344445",
        ] {
            assert_eq!(parse_hex(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn system_map_refuses_a_module_column() {
        let t = parse_system_map(b"ffffffff81000000 T a\nffffffff81000010 t b\t[m]\n").unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.malformed_lines, 1);
    }

    #[test]
    fn unusable_tables_are_refused() {
        let zero = "0000000000000000 T a\n0000000000000000 t b\t[m]\n0000000000000000 D c\n";
        assert_eq!(
            parse_kallsyms(zero.as_bytes()),
            Err(Error::ZeroAddresses { symbols: 2 })
        );
        assert!(matches!(
            parse_kallsyms(b""),
            Err(Error::Symbols { line: None, .. })
        ));
        assert!(matches!(
            parse_kallsyms(b"\n# only\nnot a symbol\n"),
            Err(Error::Symbols { line: Some(3), .. })
        ));
        assert!(matches!(
            parse_kallsyms(b"ffffffff81000000 D data_only\n"),
            Err(Error::Symbols { line: None, .. })
        ));
    }

    #[test]
    fn zero_text_addresses_are_left_out_when_others_are_real() {
        let t = parse_ok("0000000000000000 D __per_cpu_start\n0000000000000000 T weird\nffffffff81000000 T a\nffffffff81000020 T b\n");
        assert_eq!(t.zero_address_text, 1);
        assert_eq!(t.kind[1], SymbolKind::Ignored);
        assert_eq!(t.size[1], 0);
        assert_eq!(t.size[2], 0x20);
        assert_eq!(t.functions, vec![2, 3]);
    }

    #[test]
    fn compiler_parents() {
        assert_eq!(compiler_parent("foo.cold"), Some(("foo", "cold")));
        assert_eq!(compiler_parent("foo.cold.12"), Some(("foo", "cold")));
        assert_eq!(
            compiler_parent("foo.isra.0.cold"),
            Some(("foo.isra.0", "cold"))
        );
        assert_eq!(
            compiler_parent("foo.constprop.0.isra.0"),
            Some(("foo.constprop.0", "isra"))
        );
        assert_eq!(compiler_parent("foo.part.3"), Some(("foo", "part")));
        assert_eq!(compiler_parent("foo.llvm.1234567"), Some(("foo", "llvm")));
        assert_eq!(compiler_parent("foo"), None);
        assert_eq!(compiler_parent("foo.part"), None);
        assert_eq!(compiler_parent("foo.bar.1"), None);
        assert_eq!(compiler_parent(".cold"), None);
        assert_eq!(compiler_parent(".part.1"), None);
    }

    #[test]
    fn markers() {
        for m in [
            "_stext",
            "_etext",
            "__sched_text_start",
            "__lock_text_end",
            "__pi__text",
        ] {
            assert!(is_marker_name(m), "{m}");
        }
        for f in [
            "__delayacct_blkio_start",
            "irq_entries_start",
            "__text_start",
            "text",
        ] {
            assert!(!is_marker_name(f), "{f}");
        }
    }

    #[test]
    fn entries_take_explicit_sizes_and_fill_gaps() {
        let e = |address, name: &str, size| SymbolEntry {
            address,
            kind_letter: b't',
            name: name.to_owned(),
            module: None,
            size,
        };
        let t =
            from_entries(&[e(0x1000, "a", 0x8), e(0x1010, "b", 0), e(0x1030, "c", 0x4)]).unwrap();
        assert_eq!(t.size, vec![0x8, 0x20, 0x4]);
        assert_eq!(t.size_exact, vec![true, true, true]);
        assert_eq!(t.line, vec![0, 0, 0]);
    }

    /// Brute force of the vmlinux rule on random sorted tables.
    #[test]
    fn random_vmlinux_tables_match_brute_force() {
        let mut state = 0x1234_5678_u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..50 {
            let n = 1 + (next() % 60) as usize;
            let mut addrs: Vec<u64> = (0..n).map(|_| 0x1000 + (next() % 40) * 8).collect();
            addrs.sort_unstable();
            let text: String = addrs
                .iter()
                .enumerate()
                .map(|(k, a)| format!("{a:016x} t f{}\n", k % 7))
                .collect();
            let t = parse_ok(&text);
            for i in 0..n {
                let above = addrs.iter().copied().filter(|&a| a > addrs[i]).min();
                match above {
                    Some(a) => assert_eq!((t.size[i], t.size_exact[i]), (a - addrs[i], true)),
                    None => assert!(!t.size_exact[i]),
                }
                let same_before = (0..i).filter(|&j| t.name(j) == t.name(i)).count();
                assert_eq!(t.sympos[i] as usize, same_before + 1);
            }
        }
    }
}
