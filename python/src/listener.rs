//! A Python rebalance listener: two optional callables behind the library's
//! [`RebalanceListener`]. They run on the runtime's threads with the GIL taken; an exception
//! they raise is reported as unraisable (the rebalance goes on, as with a Java listener that
//! logs). While the interpreter is shutting down they are not called.

use std::collections::{BTreeMap, BTreeSet};

use pyo3::prelude::*;

use zkconsumer::RebalanceListener;

pub(crate) struct PyListener {
    pub before_release: Option<Py<PyAny>>,
    pub after_assign: Option<Py<PyAny>>,
}

fn call(callback: &Option<Py<PyAny>>, args: impl FnOnce(Python<'_>) -> PyResult<Py<PyAny>>) {
    let Some(callback) = callback else {
        return;
    };
    // Not while the interpreter shuts down (a consumer left open at exit): skip the callback.
    if crate::runtime::finalizing() {
        return;
    }
    let _ = Python::try_attach(|py| {
        let result = args(py).and_then(|args| {
            let args = args.bind(py).cast::<pyo3::types::PyTuple>()?.clone();
            callback.call1(py, args)
        });
        if let Err(e) = result {
            e.write_unraisable(py, Some(callback.bind(py)));
        }
    });
}

impl RebalanceListener for PyListener {
    fn before_releasing_partitions(&self, owned: &BTreeMap<String, BTreeSet<i32>>) {
        call(&self.before_release, |py| {
            Ok((owned.clone(),).into_pyobject(py)?.into_any().unbind())
        });
    }

    fn before_starting_fetchers(
        &self,
        consumer_id: &str,
        assignment: &BTreeMap<String, BTreeMap<i32, String>>,
    ) {
        call(&self.after_assign, |py| {
            Ok((consumer_id, assignment.clone())
                .into_pyobject(py)?
                .into_any()
                .unbind())
        });
    }
}
