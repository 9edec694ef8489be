//! Python property values in, [`Value`]s out. Each value's fate is decided here by explicit
//! rules (see `value.rs` for the text they become); nothing is left to a generic serialiser,
//! which would turn NaN into `null` and refuse dates, Decimals and numpy scalars.
//!
//! numpy and pandas are never imported: their values are recognised by type name and module.

use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTuple, PyType,
};

use crate::value::{CivilDate, MissingPolicy, Value};

/// How a client reads values that have more than one sensible meaning.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConvertOptions {
    pub missing: MissingPolicy,
    /// Read a `datetime` without `tzinfo` as UTC instead of refusing it.
    pub assume_utc: bool,
}

static DECIMAL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATETIME: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static DATE: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static ENUM: PyOnceLock<Py<PyType>> = PyOnceLock::new();

const ACCEPTED: &str = "str, bool, int, float, Decimal, date, datetime, an Enum of these, \
                       a list/tuple/set of these, or None";

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .fully_qualified_name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// A Python `str` as Rust text; a lone surrogate (not encodable as UTF-8) is a `ValueError`.
pub fn text(obj: &Bound<'_, PyString>, what: &str) -> PyResult<String> {
    obj.to_str().map(str::to_owned).map_err(|_| {
        PyValueError::new_err(format!(
            "{what}: the string cannot be encoded as UTF-8 (it holds a lone surrogate): {}",
            obj.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    })
}

/// A value's own code failed while it was read (a property, `__eq__`, `utcoffset()` or an
/// Enum's `value` raising `AttributeError`, `KeyError`, `RuntimeError`...): a `TypeError`
/// naming `what`, with the original as its cause. `TypeError`, `ValueError` and exceptions
/// that are not `Exception`s (`KeyboardInterrupt`, a signal handler's own) pass unchanged.
pub fn as_bad_value(py: Python<'_>, error: PyErr, what: &str) -> PyErr {
    let passes = error.is_instance_of::<PyTypeError>(py)
        || error.is_instance_of::<PyValueError>(py)
        || !error.is_instance_of::<PyException>(py);
    if passes {
        return error;
    }
    let said = error
        .value(py)
        .str()
        .map(|s| s.to_string())
        .unwrap_or_default();
    let name = error
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an exception".to_owned());
    let wrapped = PyTypeError::new_err(format!("{what} could not be read: {name}: {said}"));
    wrapped.set_cause(py, Some(error));
    wrapped
}

/// Reads `properties` (a mapping of `str` to values, or None) into HubSpot text, in the
/// mapping's order. Fails on the first bad name or value, naming it.
pub fn properties(
    obj: Option<&Bound<'_, PyAny>>,
    options: ConvertOptions,
) -> PyResult<Vec<(String, String)>> {
    properties_except(obj, &[], options)
}

/// [`properties`], leaving out the fields named in `skip` (a record's id field, the fields
/// naming the records it is associated with).
pub fn properties_except(
    obj: Option<&Bound<'_, PyAny>>,
    skip: &[&str],
    options: ConvertOptions,
) -> PyResult<Vec<(String, String)>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    let mut add = |key: Bound<'_, PyAny>, value: Bound<'_, PyAny>| -> PyResult<()> {
        let Ok(name) = key.cast::<PyString>() else {
            return Err(PyTypeError::new_err(format!(
                "property names must be str, got {} {}",
                type_name(&key),
                key.repr()?
            )));
        };
        let name = text(name, "a property name")?;
        if skip.contains(&name.as_str()) {
            return Ok(());
        }
        if name.is_empty() {
            return Err(PyValueError::new_err("a property name is empty"));
        }
        let value = read(&value, &name, options, false)
            .map_err(|e| as_bad_value(value.py(), e, &format!("property '{name}'")))?;
        if let Some(text) = value
            .to_hubspot(&name, options.missing)
            .map_err(super::errors::to_py)?
        {
            out.push((name, text));
        }
        Ok(())
    };
    let py = obj.py();
    if let Ok(dict) = obj.cast::<PyDict>() {
        // Reading a value may run the value's own code (`utcoffset()`, an Enum's `value`),
        // which may change the dict, as may another thread meanwhile: iterating the dict
        // itself would then fail midway. Such a record is read from a copy; one of plain
        // values (reading them runs no Python code, and the GIL stays held) from the dict.
        let plain = dict.iter().all(|(k, v)| {
            k.is_exact_instance_of::<PyString>()
                && (v.is_none()
                    || v.is_exact_instance_of::<PyString>()
                    || v.is_exact_instance_of::<PyInt>()
                    || v.is_exact_instance_of::<PyFloat>()
                    || v.is_exact_instance_of::<PyBool>())
        });
        let dict = if plain { dict.clone() } else { dict.copy()? };
        for (key, value) in dict.iter() {
            add(key, value)?;
        }
    } else if obj.hasattr(intern!(py, "keys"))? && obj.hasattr(intern!(py, "__getitem__"))? {
        let items = obj
            .call_method0(intern!(py, "items"))
            .and_then(|items| py.get_type::<PyList>().call1((items,)))
            .map_err(|e| as_bad_value(py, e, "the record's items"))?;
        for item in items.cast::<PyList>()?.iter() {
            let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
            add(key, value)?;
        }
    } else {
        return Err(PyTypeError::new_err(format!(
            "properties must be a mapping of property names to values (a dict), got {}",
            type_name(obj)
        )));
    }
    Ok(out)
}

/// One value of property `name`. `in_list` refuses nested lists.
pub fn read(
    obj: &Bound<'_, PyAny>,
    name: &str,
    options: ConvertOptions,
    in_list: bool,
) -> PyResult<Value> {
    let py = obj.py();
    if let Ok(s) = obj.cast_exact::<PyString>() {
        return Ok(Value::Text(text(s, &format!("property '{name}'"))?));
    }
    if obj.is_none() {
        return Ok(Value::Missing);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance(ENUM.import(py, "enum", "Enum")?)? {
        let inner = obj.getattr(intern!(py, "value"))?;
        if inner.is_instance(ENUM.import(py, "enum", "Enum")?)? {
            return Err(PyTypeError::new_err(format!(
                "property '{name}': the Enum member {} has another Enum as its value",
                obj.repr()?
            )));
        }
        return read(&inner, name, options, in_list);
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Text(text(s, &format!("property '{name}'"))?));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        return integer(i, name);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return float(f.value(), obj, name);
    }
    if obj.is_instance(DECIMAL.import(py, "decimal", "Decimal")?)? {
        return decimal(obj, name);
    }
    if let Some(marker) = pandas_missing(obj)? {
        return Ok(marker);
    }
    if obj.is_instance(DATETIME.import(py, "datetime", "datetime")?)? {
        return datetime(obj, name, options);
    }
    if obj.is_instance(DATE.import(py, "datetime", "date")?)? {
        return Ok(Value::Date(civil_date(obj)?));
    }
    let is_set = obj.is_instance_of::<PySet>() || obj.is_instance_of::<PyFrozenSet>();
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() || is_set {
        if in_list {
            return Err(PyTypeError::new_err(format!(
                "property '{name}': a list item is itself a {}; lists hold scalars",
                type_name(obj)
            )));
        }
        let items = obj
            .try_iter()?
            .map(|item| read(&item?, name, options, true))
            .collect::<PyResult<_>>()?;
        return Ok(Value::List {
            items,
            sort: is_set,
        });
    }
    if let Some(value) = numpy_scalar(obj, name, options, in_list)? {
        return Ok(value);
    }
    Err(PyTypeError::new_err(format!(
        "property '{name}': a value of type {} cannot be sent ({}); accepted: {ACCEPTED}",
        type_name(obj),
        short_repr(obj)
    )))
}

fn integer(i: &Bound<'_, PyInt>, name: &str) -> PyResult<Value> {
    Ok(Value::Integer(match i.extract::<i64>() {
        Ok(small) => small.to_string(),
        // Python refuses to print an int of thousands of digits: say which property.
        Err(_) => match i.str() {
            Ok(digits) => digits.to_str()?.to_owned(),
            Err(e) => {
                return Err(PyValueError::new_err(format!(
                    "property '{name}': the integer is too large to send ({e})"
                )))
            }
        },
    }))
}

fn decimal(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Value> {
    let py = obj.py();
    if obj.call_method0(intern!(py, "is_nan"))?.is_truthy()? {
        return Ok(Value::Missing);
    }
    if obj.call_method0(intern!(py, "is_infinite"))?.is_truthy()? {
        return Err(PyValueError::new_err(format!(
            "property '{name}': {} is not a number HubSpot can store",
            obj.repr()?
        )));
    }
    let (sign, digits, exponent): (u8, Vec<u8>, i64) =
        obj.call_method0(intern!(py, "as_tuple"))?.extract()?;
    Ok(Value::Decimal {
        negative: sign == 1,
        digits: digits.iter().map(|d| char::from(b'0' + d)).collect(),
        exponent,
    })
}

fn short_repr(obj: &Bound<'_, PyAny>) -> String {
    let r = obj
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "?".to_owned());
    if r.chars().count() > 80 {
        format!("{}...", r.chars().take(80).collect::<String>())
    } else {
        r
    }
}

fn float(f: f64, obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Value> {
    if f.is_nan() {
        return Ok(Value::Missing);
    }
    if f.is_infinite() {
        return Err(PyValueError::new_err(format!(
            "property '{name}': {} is not a number HubSpot can store",
            short_repr(obj)
        )));
    }
    Ok(Value::Float(f))
}

/// `pandas.NA` and `pandas.NaT`, recognised without importing pandas.
fn pandas_missing(obj: &Bound<'_, PyAny>) -> PyResult<Option<Value>> {
    let ty = obj.get_type();
    let name = ty.name()?;
    let name = name.to_str()?;
    if name != "NAType" && name != "NaTType" {
        return Ok(None);
    }
    let module = ty.module()?;
    Ok(module
        .to_str()?
        .starts_with("pandas")
        .then_some(Value::Missing))
}

/// numpy's bool, integer and floating scalars, recognised without importing numpy.
fn numpy_scalar(
    obj: &Bound<'_, PyAny>,
    name: &str,
    options: ConvertOptions,
    in_list: bool,
) -> PyResult<Option<Value>> {
    let py = obj.py();
    let module = obj.get_type().module()?;
    if !module.to_str()?.starts_with("numpy") {
        return Ok(None);
    }
    // numpy is loaded when one of its objects is here: look it up, never import it.
    let numpy = py
        .import("sys")?
        .getattr(intern!(py, "modules"))?
        .get_item("numpy")?;
    if !obj.is_instance(&numpy.getattr(intern!(py, "generic"))?)? {
        return Ok(None);
    }
    let dtype = obj.getattr(intern!(py, "dtype"))?;
    let kind: String = dtype.getattr(intern!(py, "kind"))?.extract()?;
    match kind.as_str() {
        "b" | "i" | "u" => Ok(Some(read(
            &obj.call_method0(intern!(py, "item"))?,
            name,
            options,
            in_list,
        )?)),
        "f" => {
            let itemsize: usize = dtype.getattr(intern!(py, "itemsize"))?.extract()?;
            let f: f64 = if itemsize < 8 {
                // float32 0.1 is 0.10000000149011612 as a double: numpy's own shortest digits
                // for its width ("0.1") are what the user wrote.
                obj.str()?.to_str()?.parse().unwrap_or(f64::NAN)
            } else {
                obj.call_method0(intern!(py, "item"))?.extract()?
            };
            Ok(Some(float(f, obj, name)?))
        }
        _ => Ok(None),
    }
}

fn civil_date(obj: &Bound<'_, PyAny>) -> PyResult<CivilDate> {
    let py = obj.py();
    Ok(CivilDate {
        year: obj.getattr(intern!(py, "year"))?.extract()?,
        month: obj.getattr(intern!(py, "month"))?.extract()?,
        day: obj.getattr(intern!(py, "day"))?.extract()?,
    })
}

fn datetime(obj: &Bound<'_, PyAny>, name: &str, options: ConvertOptions) -> PyResult<Value> {
    let py = obj.py();
    let offset = obj.call_method0(intern!(py, "utcoffset"))?;
    let utc_offset_micros = if offset.is_none() {
        if !options.assume_utc {
            return Err(PyValueError::new_err(format!(
                "property '{name}': the datetime {} has no time zone; give it a tzinfo \
                 (e.g. datetime.timezone.utc), or create the client with assume_utc=True \
                 to read naive datetimes as UTC",
                short_repr(obj)
            )));
        }
        0
    } else {
        let days: i64 = offset.getattr(intern!(py, "days"))?.extract()?;
        let seconds: i64 = offset.getattr(intern!(py, "seconds"))?.extract()?;
        let micros: i64 = offset.getattr(intern!(py, "microseconds"))?.extract()?;
        (days * 86_400 + seconds) * 1_000_000 + micros
    };
    Ok(Value::DateTime {
        date: civil_date(obj)?,
        hour: obj.getattr(intern!(py, "hour"))?.extract()?,
        minute: obj.getattr(intern!(py, "minute"))?.extract()?,
        second: obj.getattr(intern!(py, "second"))?.extract()?,
        microsecond: obj.getattr(intern!(py, "microsecond"))?.extract()?,
        utc_offset_micros,
    })
}
