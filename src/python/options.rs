//! The client's options as `HubSpot(...)` declares them, read from the one mapping it passes
//! (name to value) into the core's [`ClientConfig`] and the binding's [`ConvertOptions`]. Every
//! check of an option's type and range is here; the core checks what needs its knowledge (the
//! token, the base URL, the CA bundle's contents).

use std::path::PathBuf;
use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};

use super::convert::ConvertOptions;
use super::errors;
use std::sync::Arc;

use crate::api::ApiVersion;
use crate::auth::{AuthConfig, OAuthApp, OnToken, Tokens};
use crate::client::ClientConfig;
use crate::pacing::Limit;
use crate::retry::RetryPolicy;
use crate::value::MissingPolicy;

/// The options one by one, each taken out of the mapping once.
struct Reader<'py> {
    options: Bound<'py, PyDict>,
}

impl<'py> Reader<'py> {
    fn take(&self, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let value = self.options.get_item(name)?.ok_or_else(|| {
            PyTypeError::new_err(format!("the client option {name} was not given"))
        })?;
        self.options.del_item(name)?;
        Ok(value)
    }

    fn seconds(&self, name: &str) -> PyResult<Duration> {
        let value = self.take(name)?;
        if value.is_instance_of::<PyBool>()
            || !(value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>())
        {
            return Err(PyTypeError::new_err(format!(
                "{name} must be a number of seconds, got {}",
                value.get_type().name()?
            )));
        }
        let seconds: f64 = value.extract()?;
        Duration::try_from_secs_f64(seconds)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "{name} must be a positive number of seconds, got {seconds}"
                ))
            })
    }

    fn count(&self, name: &str) -> PyResult<Option<u32>> {
        let value = self.take(name)?;
        if value.is_none() {
            return Ok(None);
        }
        if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
            return Err(PyTypeError::new_err(format!(
                "{name} must be an int, got {}",
                value.get_type().name()?
            )));
        }
        let count: i64 = value.extract().unwrap_or(i64::MAX);
        if count < 0 {
            return Err(PyValueError::new_err(format!(
                "{name} must not be negative, got {count}"
            )));
        }
        Ok(Some(u32::try_from(count).unwrap_or(u32::MAX)))
    }

    fn text(&self, name: &str) -> PyResult<Option<String>> {
        let value = self.take(name)?;
        self.text_of(name, &value)
    }

    fn text_of(&self, name: &str, value: &Bound<'py, PyAny>) -> PyResult<Option<String>> {
        if value.is_none() {
            return Ok(None);
        }
        let Ok(text) = value.cast::<PyString>() else {
            return Err(PyTypeError::new_err(format!(
                "{name} must be a str, got {}",
                value.get_type().name()?
            )));
        };
        super::convert::text(text, name).map(Some)
    }
}

/// Reads `token` and the options of `HubSpot(...)` (every one, by name) into the client's
/// configuration and the rules its values are read by.
pub fn read(
    token: &Bound<'_, PyAny>,
    options: &Bound<'_, PyDict>,
) -> PyResult<(ClientConfig, ConvertOptions)> {
    let r = Reader {
        options: options.copy()?,
    };
    let missing = match r.text("missing")?.as_deref() {
        Some("skip") => MissingPolicy::Skip,
        Some("clear") => MissingPolicy::Clear,
        other => {
            return Err(PyValueError::new_err(format!(
                "missing must be 'skip' (leave the property out) or 'clear' (send \"\"), got {}",
                other.map_or("None".to_owned(), |o| format!("'{o}'"))
            )))
        }
    };
    let convert = ConvertOptions {
        missing,
        assume_utc: r.take("assume_utc")?.is_truthy()?,
    };
    let rate_window = r.seconds("rate_window")?;
    let oauth = r.take("oauth")?;
    let on_token = r.take("on_token")?;
    let auth = if oauth.is_none() {
        // Never shown in a message, even when it cannot be read.
        let token = r
            .text_of("token", token)
            .map_err(|e| match e.is_instance_of::<PyValueError>(token.py()) {
                true => PyValueError::new_err("the access token cannot be encoded as UTF-8"),
                false => e,
            })?
            .unwrap_or_default();
        AuthConfig::Token(token)
    } else {
        let (client_id, client_secret, refresh_token): (String, String, String) =
            oauth
                .extract()
                .map_err(|_| PyTypeError::new_err("oauth must be an OAuth(...) of three str"))?;
        let on_token: Option<OnToken> = if on_token.is_none() {
            None
        } else {
            if !on_token.is_callable() {
                return Err(PyTypeError::new_err("on_token must be callable"));
            }
            let callback = on_token.unbind();
            Some(Arc::new(move |tokens: &Tokens| {
                Python::attach(|py| {
                    let given = PyDict::new(py);
                    let set = given
                        .set_item("access_token", &tokens.access_token)
                        .and_then(|_| given.set_item("refresh_token", &tokens.refresh_token))
                        .and_then(|_| {
                            given.set_item("expires_in", tokens.expires_in.as_secs_f64())
                        });
                    if let Err(e) = set.and_then(|_| callback.call1(py, (given,)).map(drop)) {
                        // The application's own failure: reported, never a failed request.
                        e.write_unraisable(py, None);
                    }
                })
            }))
        };
        AuthConfig::OAuth {
            app: OAuthApp {
                client_id,
                client_secret,
                refresh_token,
            },
            on_token,
        }
    };
    let config = ClientConfig {
        auth,
        base_url: r.text("base_url")?.unwrap_or_default(),
        timeout: r.seconds("timeout")?,
        connect_timeout: r.seconds("connect_timeout")?,
        retry: RetryPolicy {
            max_retries: r.count("max_retries")?.unwrap_or_default(),
            deadline: r.seconds("deadline")?,
            backoff_base: r.seconds("backoff")?,
            ..RetryPolicy::default()
        },
        rate_limit: match r.count("rate_limit")? {
            None => None,
            Some(0) => {
                return Err(PyValueError::new_err(
                    "rate_limit must be at least 1 request per window",
                ))
            }
            Some(max) => Some(Limit {
                max,
                window: rate_window,
            }),
        },
        ca_bundle: {
            let path = r.take("ca_bundle")?;
            if path.is_none() {
                None
            } else {
                Some(path.extract::<PathBuf>()?)
            }
        },
        api_version: match r.text("api_version")? {
            None => None,
            Some(text) => Some(ApiVersion::parse(&text).map_err(errors::to_py)?),
        },
    };
    if let Some((name, _)) = r.options.iter().next() {
        return Err(PyTypeError::new_err(format!(
            "HubSpot() got an unexpected option {name}"
        )));
    }
    Ok((config, convert))
}
