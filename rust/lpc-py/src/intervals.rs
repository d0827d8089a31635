//! `lpc.IntervalTree`: the binding of `lpc_core::IntervalTree`.

use crate::convert::{address, i64_column, u64_column};
use crate::errors::{detached, to_py};
use lpc_core::{IntervalTree, Range};
use numpy::{
    IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyInt, PyTuple};
use std::borrow::Cow;
use std::sync::Arc;

/// An immutable set of half-open address ranges ``[start, end)`` with an int64
/// id each: the structure behind ``within_patched_set(ip)``.
///
/// Build it from an iterable of ``(start, end, id)`` tuples or with
/// :meth:`from_arrays`. Queries never mutate it, so one tree may be shared by
/// any number of threads; batch queries release the GIL.
#[pyclass(name = "IntervalTree", module = "lpc._core", frozen)]
pub struct PyIntervalTree {
    inner: Arc<IntervalTree>,
}

fn ranges_from_iterable(ranges: &Bound<'_, PyAny>) -> PyResult<Vec<Range>> {
    let mut out = Vec::new();
    for (index, item) in ranges.try_iter()?.enumerate() {
        let item = item?;
        let (start, end, id): (u64, u64, i64) = item.extract().map_err(|_| {
            let repr = item
                .repr()
                .map_or_else(|_| "?".to_owned(), |r| r.to_string());
            // Three ints, one out of its range: a bad value, as in the batch calls.
            let ints = item.extract::<(Bound<'_, PyInt>, Bound<'_, PyInt>, Bound<'_, PyInt>)>();
            if ints.is_ok() {
                PyValueError::new_err(format!(
                    "ranges[{index}] = {repr}: start and end must be in [0, 2**64) \
                     and the id must fit int64"
                ))
            } else {
                PyTypeError::new_err(format!(
                    "ranges[{index}]: expected (start, end, id) with 0 <= start, end < 2**64 \
                     and an int64 id, got {repr}"
                ))
            }
        })?;
        out.push(Range { start, end, id });
    }
    Ok(out)
}

/// The ``out=`` argument as a 1-D int64 array; anything else is a
/// `TypeError` that names ``out`` and says what it got.
fn out_array<'py>(out: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray1<i64>>> {
    if let Ok(array) = out.cast::<PyArray1<i64>>() {
        return Ok(array.clone());
    }
    let got = match out.cast::<PyUntypedArray>() {
        Ok(a) => format!("a {}-D array of dtype {}", a.ndim(), a.dtype()),
        Err(_) => out
            .get_type()
            .name()
            .map_or_else(|_| "?".to_owned(), |n| n.to_string()),
    };
    Err(PyTypeError::new_err(format!(
        "out: expected a writable 1-D int64 numpy array, got {got}"
    )))
}

impl PyIntervalTree {
    fn wrap(inner: IntervalTree) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }
}

#[pymethods]
impl PyIntervalTree {
    #[new]
    #[pyo3(signature = (ranges = None))]
    fn new(py: Python<'_>, ranges: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        let ranges = match ranges {
            Some(r) => ranges_from_iterable(r)?,
            None => Vec::new(),
        };
        let tree = detached(py, || IntervalTree::new(ranges))?.map_err(to_py)?;
        Ok(Self::wrap(tree))
    }

    /// Builds a tree from parallel arrays; ``ids`` defaults to ``0..n``.
    #[staticmethod]
    #[pyo3(signature = (starts, ends, ids = None))]
    fn from_arrays(
        py: Python<'_>,
        starts: &Bound<'_, PyAny>,
        ends: &Bound<'_, PyAny>,
        ids: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let starts = u64_column(starts, "starts")?;
        let ends = u64_column(ends, "ends")?;
        let ids = ids.map(|ids| i64_column(ids, "ids")).transpose()?;
        let (s, e) = (starts.as_slice(), ends.as_slice());
        let tree =
            detached(py, || IntervalTree::from_arrays(s, e, ids.as_deref()))?.map_err(to_py)?;
        Ok(Self::wrap(tree))
    }

    /// A new tree with these ``(start, end, id)`` ranges added.
    fn with_ranges(&self, py: Python<'_>, ranges: &Bound<'_, PyAny>) -> PyResult<Self> {
        let extra = ranges_from_iterable(ranges)?;
        let tree = detached(py, || self.inner.with_ranges(extra))?.map_err(to_py)?;
        Ok(Self::wrap(tree))
    }

    /// A new tree without the ranges whose id is in ``ids``.
    fn without_ids(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<Self> {
        let ids = i64_column(ids, "ids")?;
        let tree = detached(py, || self.inner.without_ids(&ids))?;
        Ok(Self::wrap(tree))
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "IntervalTree(ranges={}, disjoint={}, nbytes={})",
            self.inner.len(),
            if self.inner.is_disjoint() {
                "True"
            } else {
                "False"
            },
            self.inner.nbytes()
        )
    }

    /// True when no two ranges overlap.
    #[getter]
    fn is_disjoint(&self) -> bool {
        self.inner.is_disjoint()
    }

    /// Heap bytes held by the tree.
    #[getter]
    fn nbytes(&self) -> usize {
        self.inner.nbytes()
    }

    /// Starts in sorted ``(start, id)`` order (a copy).
    #[getter]
    fn starts<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        self.inner.starts().to_vec().into_pyarray(py)
    }

    /// Ends in the order of :attr:`starts` (a copy).
    #[getter]
    fn ends<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        self.inner.ends().to_vec().into_pyarray(py)
    }

    /// Ids in the order of :attr:`starts` (a copy).
    #[getter]
    fn ids<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        self.inner.ids().to_vec().into_pyarray(py)
    }

    /// The id of the range containing ``ip`` with the largest start (ties go
    /// to the highest id: the newest patch wins), or ``None``.
    fn find(&self, ip: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
        Ok(self.inner.find(address(ip, "ip")?))
    }

    /// Whether any range contains ``ip``.
    fn contains(&self, ip: &Bound<'_, PyAny>) -> PyResult<bool> {
        Ok(self.inner.contains(address(ip, "ip")?))
    }

    /// Ids of all ranges containing ``ip``, ranked as :meth:`find` ranks them.
    fn find_all(&self, ip: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
        Ok(self.inner.find_all(address(ip, "ip")?))
    }

    /// Ids of all ranges meeting ``[start, end)``, largest start first.
    fn overlapping(&self, start: &Bound<'_, PyAny>, end: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
        let (start, end) = (address(start, "start")?, address(end, "end")?);
        self.inner.overlapping(start, end).map_err(to_py)
    }

    /// :meth:`find` for each address of a 1-D array; ``-1`` marks a miss.
    ///
    /// ``out`` (optional) is a writable C-contiguous int64 array of the same
    /// length. ``parallel`` splits long batches across threads.
    #[pyo3(signature = (ips, out = None, *, parallel = true))]
    fn find_many<'py>(
        &self,
        py: Python<'py>,
        ips: &Bound<'py, PyAny>,
        out: Option<&Bound<'py, PyAny>>,
        parallel: bool,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let out = out.map(out_array).transpose()?;
        let ips = u64_column(ips, "ips")?;
        let qs = ips.as_slice();
        let tree = &self.inner;
        match out {
            Some(out) => {
                {
                    let mut view = out
                        .try_readwrite()
                        .map_err(|e| PyValueError::new_err(format!("out: not writable ({e})")))?;
                    let slice = view.as_slice_mut().map_err(|_| {
                        PyValueError::new_err("out: expected a C-contiguous int64 array")
                    })?;
                    if slice.len() != qs.len() {
                        return Err(PyValueError::new_err(format!(
                            "out: length {} differs from ips' length {}",
                            slice.len(),
                            qs.len()
                        )));
                    }
                    detached(py, || tree.find_many_into(qs, slice, parallel))?;
                }
                Ok(out)
            }
            None => Ok(detached(py, || tree.find_many(qs, parallel))?.into_pyarray(py)),
        }
    }

    /// Boolean mask: does any range contain each address?
    #[pyo3(signature = (ips, *, parallel = true))]
    fn contains_many<'py>(
        &self,
        py: Python<'py>,
        ips: &Bound<'py, PyAny>,
        parallel: bool,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let ips = u64_column(ips, "ips")?;
        let qs = ips.as_slice();
        let tree = &self.inner;
        let hits = detached(py, || {
            tree.find_many(qs, parallel)
                .into_iter()
                .map(|id| id >= 0)
                .collect::<Vec<bool>>()
        })?;
        Ok(hits.into_pyarray(py))
    }

    /// The stack check for many stacks at once (CSR layout).
    ///
    /// Stack ``s`` is ``ips[offsets[s]:offsets[s + 1]]``, innermost frame first;
    /// ``offsets`` starts at 0, never decreases and ends at ``len(ips)``
    /// (``ValueError`` naming ``offsets`` otherwise).
    /// Returns ``(frame, id)`` int64 arrays: the position inside each stack of
    /// its first frame within the set, and that range's id; ``-1`` for none.
    #[pyo3(signature = (ips, offsets, *, parallel = true))]
    fn first_hit_per_stack<'py>(
        &self,
        py: Python<'py>,
        ips: &Bound<'py, PyAny>,
        offsets: &Bound<'py, PyAny>,
        parallel: bool,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let ips = u64_column(ips, "ips")?;
        let offsets = u64_column(offsets, "offsets")?;
        let (qs, offs) = (ips.as_slice(), offsets.as_slice());
        let tree = &self.inner;
        let (frame, id) =
            detached(py, || tree.first_hit_per_stack(qs, offs, parallel))?.map_err(to_py)?;
        PyTuple::new(py, [frame.into_pyarray(py), id.into_pyarray(py)])
    }

    /// The same check over an interned dump (``lpc.dump.Dump.frame_tokens``):
    /// frame ``f``'s address is ``token_ips[tokens[f]]``, each distinct token is
    /// looked up once, and frames where ``mask`` (bool, one per frame) is false
    /// are passed over. ``tokens`` is a uint32 array whose ids are below
    /// ``len(token_ips)``; ``offsets`` partition it. Returns ``(frame, id)``
    /// as :meth:`first_hit_per_stack` does.
    #[pyo3(signature = (token_ips, tokens, offsets, *, mask = None, parallel = true))]
    fn first_hit_per_token_stack<'py>(
        &self,
        py: Python<'py>,
        token_ips: &Bound<'py, PyAny>,
        tokens: PyReadonlyArray1<'py, u32>,
        offsets: &Bound<'py, PyAny>,
        mask: Option<PyReadonlyArray1<'py, bool>>,
        parallel: bool,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let token_ips = u64_column(token_ips, "token_ips")?;
        let offsets = u64_column(offsets, "offsets")?;
        let tokens: Cow<'_, [u32]> = match tokens.as_slice() {
            Ok(slice) => Cow::Borrowed(slice),
            Err(_) => Cow::Owned(tokens.as_array().to_vec()),
        };
        let mask: Option<Cow<'_, [bool]>> = mask.as_ref().map(|m| match m.as_slice() {
            Ok(slice) => Cow::Borrowed(slice),
            Err(_) => Cow::Owned(m.as_array().to_vec()),
        });
        let (ips, offs, toks) = (token_ips.as_slice(), offsets.as_slice(), &*tokens);
        let mask = mask.as_deref();
        let tree = &self.inner;
        let (frame, id) = detached(py, || {
            tree.first_hit_per_token_stack(ips, toks, mask, offs, parallel)
        })?
        .map_err(to_py)?;
        PyTuple::new(py, [frame.into_pyarray(py), id.into_pyarray(py)])
    }
}
