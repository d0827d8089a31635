//! Python inputs to Rust slices, with one documented rule for every dtype.
//!
//! * A 1-D C-contiguous numpy `uint64` array is borrowed, not copied.
//! * Any other numpy integer array (any width, signed or not, any byte order,
//!   strided) is converted; negative values are refused with `ValueError`.
//! * A list or tuple of Python ints is read int by int (numpy would turn a
//!   list mixing small ints with ints ≥ 2**63 — kernel addresses next to 0 —
//!   into float64, and an empty list into float64 too).
//! * Anything else that `numpy.asarray` turns into a 1-D integer array
//!   (`array.array`, memoryviews, ranges) goes through the array rule.
//! * Booleans, floats, objects and strings are refused with `TypeError`, and
//!   arrays of more than one dimension with `ValueError`; every message names
//!   the argument.

use numpy::prelude::*;
use numpy::{PyArray1, PyReadonlyArray1, PyUntypedArray};
use pyo3::exceptions::{PyOverflowError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyList, PyTuple};

/// A borrowed or converted `u64` column.
pub(crate) enum U64Column<'py> {
    Borrowed(PyReadonlyArray1<'py, u64>),
    Owned(Vec<u64>),
}

impl U64Column<'_> {
    pub(crate) fn as_slice(&self) -> &[u64] {
        match self {
            Self::Borrowed(view) => view.as_slice().expect("contiguity checked on borrow"),
            Self::Owned(values) => values,
        }
    }
}

/// A list or tuple whose items are all exact Python ints, read one by one;
/// `None` for anything else (it then goes through numpy). An int out of the
/// target's range is a `ValueError` naming the argument and the position.
fn python_ints<T>(
    obj: &Bound<'_, PyAny>,
    name: &str,
    read: impl Fn(&Bound<'_, PyAny>) -> PyResult<T>,
) -> PyResult<Option<Vec<T>>> {
    let items = if let Ok(list) = obj.cast::<PyList>() {
        list.iter().collect::<Vec<_>>()
    } else if let Ok(tuple) = obj.cast::<PyTuple>() {
        tuple.iter().collect::<Vec<_>>()
    } else {
        return Ok(None);
    };
    if !items.iter().all(|v| v.is_exact_instance_of::<PyInt>()) {
        return Ok(None);
    }
    items
        .iter()
        .enumerate()
        .map(|(i, v)| {
            read(v).map_err(|_| {
                PyValueError::new_err(format!("{name}[{i}] = {v}: out of range for this argument"))
            })
        })
        .collect::<PyResult<Vec<T>>>()
        .map(Some)
}

/// The object as a 1-D numpy array, via `numpy.asarray` when it is not one.
fn as_1d_array<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<Bound<'py, PyUntypedArray>> {
    let array = match obj.cast::<PyUntypedArray>() {
        Ok(array) => array.clone(),
        Err(_) => {
            let numpy = obj.py().import("numpy")?;
            let converted = numpy.call_method1("asarray", (obj,)).map_err(|e| {
                PyTypeError::new_err(format!("{name}: expected a 1-D integer array ({e})"))
            })?;
            converted.cast_into::<PyUntypedArray>().map_err(|_| {
                PyTypeError::new_err(format!("{name}: expected a 1-D integer array"))
            })?
        }
    };
    if array.ndim() != 1 {
        return Err(PyValueError::new_err(format!(
            "{name}: expected a 1-D array, got {} dimensions",
            array.ndim()
        )));
    }
    Ok(array)
}

fn dtype_kind(array: &Bound<'_, PyUntypedArray>) -> u8 {
    array.dtype().kind()
}

fn refuse_dtype(array: &Bound<'_, PyUntypedArray>, name: &str) -> PyErr {
    PyTypeError::new_err(format!(
        "{name}: expected an integer array (uint64 preferred), got dtype {}",
        array.dtype()
    ))
}

/// Any integer array-like as `u64`s; see the module docs for the rule.
pub(crate) fn u64_column<'py>(obj: &Bound<'py, PyAny>, name: &str) -> PyResult<U64Column<'py>> {
    if let Some(ints) = python_ints(obj, name, |v: &Bound<'_, PyAny>| v.extract::<u64>())? {
        return Ok(U64Column::Owned(ints));
    }
    let array = as_1d_array(obj, name)?;
    if let Ok(exact) = array.cast::<PyArray1<u64>>() {
        let view = exact.readonly();
        if view.as_slice().is_ok() {
            return Ok(U64Column::Borrowed(view));
        }
        return Ok(U64Column::Owned(view.as_array().to_vec()));
    }
    match dtype_kind(&array) {
        b'u' => {
            let wide = array.call_method1("astype", ("uint64",))?;
            let wide = wide.cast::<PyArray1<u64>>()?.readonly();
            Ok(U64Column::Owned(wide.as_array().to_vec()))
        }
        b'i' => {
            let wide = array.call_method1("astype", ("int64",))?;
            let wide = wide.cast::<PyArray1<i64>>()?.readonly();
            wide.as_array()
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    u64::try_from(v).map_err(|_| {
                        PyValueError::new_err(format!(
                            "{name}[{i}] = {v}: addresses must be in [0, 2**64)"
                        ))
                    })
                })
                .collect::<PyResult<Vec<u64>>>()
                .map(U64Column::Owned)
        }
        _ => Err(refuse_dtype(&array, name)),
    }
}

/// Any integer array-like as `i64` ids (unsigned values above `i64::MAX` refused).
pub(crate) fn i64_column(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<i64>> {
    if let Some(ints) = python_ints(obj, name, |v: &Bound<'_, PyAny>| v.extract::<i64>())? {
        return Ok(ints);
    }
    let array = as_1d_array(obj, name)?;
    match dtype_kind(&array) {
        b'i' => {
            let wide = array.call_method1("astype", ("int64",))?;
            Ok(wide.cast::<PyArray1<i64>>()?.readonly().as_array().to_vec())
        }
        b'u' => {
            let wide = array.call_method1("astype", ("uint64",))?;
            let wide = wide.cast::<PyArray1<u64>>()?.readonly();
            wide.as_array()
                .iter()
                .enumerate()
                .map(|(i, &v)| {
                    i64::try_from(v).map_err(|_| {
                        PyValueError::new_err(format!("{name}[{i}] = {v}: ids must fit int64"))
                    })
                })
                .collect()
        }
        _ => Err(refuse_dtype(&array, name)),
    }
}

/// One address argument as `u64`, quickly; `name` names it in errors.
///
/// CPython 3.11's `PyLong_AsUnsignedLongLong` (what PyO3 uses for `u64`)
/// converts ints of three or more digits — every kernel address — through
/// `_PyLong_AsByteArray`; `PyLong_AsUnsignedLong` folds the digits in a short
/// loop. On LP64 both are 64 bits wide, so single lookups take the faster one.
///
/// An int outside `[0, 2**64)` is a `ValueError` (as in the batch calls),
/// a `bool` a `TypeError` (it is an int to Python, never an address).
#[inline]
pub(crate) fn address(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<u64> {
    #[cfg(all(target_pointer_width = "64", not(windows)))]
    if obj.is_exact_instance_of::<PyInt>() {
        // SAFETY: `obj` is a live exact int; the call only reads it and sets
        // the error indicator on overflow, which `PyErr::take` collects.
        let value = unsafe { pyo3::ffi::PyLong_AsUnsignedLong(obj.as_ptr()) };
        if value == std::os::raw::c_ulong::MAX {
            if let Some(err) = PyErr::take(obj.py()) {
                return Err(address_error(obj, name, &err));
            }
        }
        return Ok(value);
    }
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!(
            "{name}: expected an int address, got bool"
        )));
    }
    obj.extract::<u64>()
        .map_err(|err| address_error(obj, name, &err))
}

/// An overflow becomes the `ValueError` of the batch calls; any other
/// conversion error keeps its type, its message prefixed by the argument.
fn address_error(obj: &Bound<'_, PyAny>, name: &str, err: &PyErr) -> PyErr {
    let py = obj.py();
    if err.is_instance_of::<PyOverflowError>(py) {
        return PyValueError::new_err(format!("{name} = {obj}: addresses must be in [0, 2**64)"));
    }
    if err.is_instance_of::<PyTypeError>(py) {
        return PyTypeError::new_err(format!(
            "{name}: expected an int address, got {}",
            obj.get_type()
                .name()
                .map_or_else(|_| "?".to_owned(), |n| n.to_string())
        ));
    }
    err.clone_ref(py)
}
