//! Binding of `lpc_core::symbols` (registered from `lib.rs`).
//!
//! The parsers return plain columns (numpy arrays, moved without a copy) and
//! the names as a [`PySymbolNames`] (kept in Rust, indexed by hashing: a
//! hundred thousand Python strings and a dict over them would cost more than
//! the parse); `lpc.symbols.Symbols` builds the API on top.

use crate::convert::u64_column;
use crate::errors::{detached, to_py};
use lpc_core::symbols::{self, NameIndex, SymbolEntry, SymbolFormat, SymbolKind, SymbolTable};
use numpy::IntoPyArray;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Adds this file's functions to `lpc._core`.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(parse_symbols, m)?)?;
    m.add_function(wrap_pyfunction!(symbols_from_entries, m)?)?;
    m.add_function(wrap_pyfunction!(compiler_parent, m)?)?;
    m.add_function(wrap_pyfunction!(symbol_kinds, m)?)?;
    m.add_function(wrap_pyfunction!(symbol_formats, m)?)?;
    m.add_class::<PySymbolNames>()?;
    m.add("SYMBOL_NO_MODULE", symbols::NO_MODULE)?;
    m.add("SYMBOL_NO_SYMBOL", symbols::NO_SYMBOL)?;
    Ok(())
}

/// The names of a symbol table, one per row (kallsyms order): each made into
/// a Python string only when asked for, and every row of a name found by
/// hashing (``lpc_core::symbols::NameIndex``).
#[pyclass(frozen, name = "SymbolNames", module = "lpc._core")]
pub(crate) struct PySymbolNames {
    /// Only the name storage and the same-name chain are kept.
    names: SymbolTable,
    index: NameIndex,
}

#[pymethods]
impl PySymbolNames {
    fn __len__(&self) -> usize {
        self.names.name_offsets.len().saturating_sub(1)
    }

    /// The name of row ``row`` (``IndexError`` outside ``0 <= row < len``).
    fn name(&self, row: i64) -> PyResult<&str> {
        match usize::try_from(row) {
            Ok(r) if r < self.__len__() => Ok(self.names.name(r)),
            _ => Err(PyIndexError::new_err(format!(
                "row {row} out of range for {} symbols",
                self.__len__()
            ))),
        }
    }

    /// Every row named ``name``, any object, in kallsyms order (empty when none).
    fn rows(&self, name: &str) -> Vec<u32> {
        self.index.rows(&self.names, name)
    }
}

/// The table with its name index built (without the GIL).
fn indexed(table: SymbolTable) -> (SymbolTable, NameIndex) {
    let index = NameIndex::new(&table);
    (table, index)
}

/// Parses ``/proc/kallsyms`` (``format="kallsyms"``) or ``System.map``
/// (``format="system_map"``) text into a dict of columns; see
/// ``lpc.symbols`` for the keys. Raises ``SymbolError`` for unusable input.
#[pyfunction]
#[pyo3(signature = (data, format = "kallsyms"))]
fn parse_symbols<'py>(py: Python<'py>, data: &[u8], format: &str) -> PyResult<Bound<'py, PyDict>> {
    let format = SymbolFormat::from_name(format).ok_or_else(|| {
        let known: Vec<String> = SymbolFormat::ALL
            .iter()
            .map(|f| format!("'{}'", f.name()))
            .collect();
        PyValueError::new_err(format!(
            "format: expected {}, got {format:?}",
            known.join(" or ")
        ))
    })?;
    let table = detached(py, || symbols::parse(data, format).map(indexed))?.map_err(to_py)?;
    columns(py, table)
}

/// Builds the same columns from parsed entries (ELF symbols), in kallsyms
/// order. ``types`` holds one nm letter per entry; a size of 0 means "derive
/// it the kallsyms way".
#[pyfunction]
#[pyo3(signature = (addresses, types, names, sizes, module = None))]
fn symbols_from_entries<'py>(
    py: Python<'py>,
    addresses: &Bound<'py, PyAny>,
    types: &[u8],
    names: Vec<String>,
    sizes: &Bound<'py, PyAny>,
    module: Option<String>,
) -> PyResult<Bound<'py, PyDict>> {
    let addresses = u64_column(addresses, "addresses")?;
    let sizes = u64_column(sizes, "sizes")?;
    let (addresses, sizes) = (addresses.as_slice(), sizes.as_slice());
    for (what, len) in [
        ("types", types.len()),
        ("names", names.len()),
        ("sizes", sizes.len()),
    ] {
        if len != addresses.len() {
            return Err(PyValueError::new_err(format!(
                "{what}: length {len} differs from addresses' length {}",
                addresses.len()
            )));
        }
    }
    let table = detached(py, || {
        let entries: Vec<SymbolEntry> = names
            .into_iter()
            .enumerate()
            .map(|(i, name)| SymbolEntry {
                address: addresses[i],
                kind_letter: types[i],
                name,
                module: module.clone(),
                size: sizes[i],
            })
            .collect();
        symbols::from_entries(&entries).map(indexed)
    })?
    .map_err(to_py)?;
    columns(py, table)
}

/// Symbol-kind names, indexed by the codes of the ``kind`` column.
#[pyfunction]
fn symbol_kinds() -> Vec<&'static str> {
    SymbolKind::ALL.iter().map(|k| k.name()).collect()
}

/// The symbol-table format names :func:`parse_symbols` accepts.
#[pyfunction]
fn symbol_formats() -> Vec<&'static str> {
    SymbolFormat::ALL.iter().map(|f| f.name()).collect()
}

/// ``(parent, kind)`` for a compiler-made part such as ``foo.cold`` or
/// ``foo.isra.0`` (``kind`` is one of cold, part, isra, constprop, llvm),
/// else ``None``.
#[pyfunction]
fn compiler_parent(name: &str) -> Option<(String, &'static str)> {
    symbols::compiler_parent(name).map(|(parent, kind)| (parent.to_owned(), kind))
}

/// The table as a dict of numpy columns and Python lists.
fn columns(
    py: Python<'_>,
    (mut t, index): (SymbolTable, NameIndex),
) -> PyResult<Bound<'_, PyDict>> {
    let out = PyDict::new(py);
    let names = SymbolTable {
        names: std::mem::take(&mut t.names),
        name_offsets: std::mem::take(&mut t.name_offsets),
        prev_same_name: t.prev_same_name.clone(),
        ..SymbolTable::default()
    };
    out.set_item("names", PySymbolNames { names, index })?;
    out.set_item("modules", PyList::new(py, &t.modules)?)?;
    out.set_item("module_build_ids", PyList::new(py, &t.module_build_ids)?)?;
    out.set_item("malformed_lines", t.malformed_lines)?;
    out.set_item("malformed_samples", PyList::new(py, &t.malformed_samples)?)?;
    out.set_item("comment_lines", t.comment_lines)?;
    out.set_item("zero_address_text", t.zero_address_text)?;
    out.set_item("sched_text", t.sched_text)?;
    out.set_item("lock_text", t.lock_text)?;
    let kind: Vec<u8> = t.kind.iter().map(|&k| k as u8).collect();
    out.set_item("kind", kind.into_pyarray(py))?;
    out.set_item("address", t.address.into_pyarray(py))?;
    out.set_item("type", t.type_letter.into_pyarray(py))?;
    out.set_item("module", t.module.into_pyarray(py))?;
    out.set_item("line", t.line.into_pyarray(py))?;
    out.set_item("size", t.size.into_pyarray(py))?;
    out.set_item("size_exact", t.size_exact.into_pyarray(py))?;
    out.set_item("sympos", t.sympos.into_pyarray(py))?;
    out.set_item("name_count", t.name_count.into_pyarray(py))?;
    out.set_item("primary", t.primary.into_pyarray(py))?;
    out.set_item("prev_same_name", t.prev_same_name.into_pyarray(py))?;
    out.set_item("parent_len", t.parent_len.into_pyarray(py))?;
    out.set_item("functions", t.functions.into_pyarray(py))?;
    Ok(out)
}
