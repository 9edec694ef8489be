//! HubSpot property values: every value travels as a string, and these are the rules that make
//! the string. The binding layer reads a Python object into a [`Value`]; [`Value::to_hubspot`]
//! decides what is sent. Single upserts and bulk upserts share these rules.

use crate::error::{Error, Result};

/// The longest number, in characters, that is sent as plain digits. A `Decimal('1E+100000')`
/// would otherwise become a 100 kB string; no HubSpot number property holds such a thing.
const MAX_NUMBER_LEN: usize = 1000;

/// The longest property value HubSpot stores, in characters.
pub(crate) const MAX_VALUE_CHARS: usize = 65_536;

/// A property value read from the caller, before it becomes HubSpot text.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Sent as it is; `""` clears the property at HubSpot.
    Text(String),
    /// `"true"` / `"false"` (checkbox properties).
    Bool(bool),
    /// Decimal digits with an optional leading `-`, of any size.
    Integer(String),
    /// A binary float: shortest digits that read back as the same float, never an exponent.
    Float(f64),
    /// A decimal number `(-1)^negative * digits * 10^exponent`, as Python's `Decimal.as_tuple()`.
    Decimal {
        negative: bool,
        digits: String,
        exponent: i64,
    },
    /// A point in time with its offset from UTC, in microseconds: sent as epoch milliseconds.
    DateTime {
        date: CivilDate,
        hour: u32,
        minute: u32,
        second: u32,
        microsecond: u32,
        utc_offset_micros: i64,
    },
    /// A calendar date: epoch milliseconds at midnight UTC of that date.
    Date(CivilDate),
    /// Scalars joined with `;` (multiple checkboxes); `sort` for sets, whose order means nothing.
    List { items: Vec<Value>, sort: bool },
    /// `None`, NaN, `pandas.NA`/`NaT`: left out of the request, or cleared when asked.
    Missing,
}

/// A proleptic Gregorian calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilDate {
    pub year: i32,
    pub month: u32,
    pub day: u32,
}

/// What a missing value (`None`, NaN, `pandas.NA`) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingPolicy {
    /// Leave the property out of the request: nothing changes at HubSpot.
    #[default]
    Skip,
    /// Send `""`, which clears the property at HubSpot.
    Clear,
}

impl Value {
    /// The text HubSpot gets for this value of property `name`, or `None` to leave it out.
    pub fn to_hubspot(&self, name: &str, missing: MissingPolicy) -> Result<Option<String>> {
        match self {
            Value::Missing => Ok(match missing {
                MissingPolicy::Skip => None,
                MissingPolicy::Clear => Some(String::new()),
            }),
            Value::List { items, sort } => {
                let mut parts = Vec::with_capacity(items.len());
                for item in items {
                    match item {
                        Value::List { .. } => {
                            return Err(invalid(name, "a list inside a list cannot be sent"))
                        }
                        Value::Missing => {
                            return Err(invalid(
                                name,
                                "a list item is missing (None or NaN); leave it out of the list",
                            ))
                        }
                        scalar => parts.push(scalar.scalar_text(name)?),
                    }
                }
                if *sort {
                    parts.sort_unstable();
                }
                Ok(Some(parts.join(";")))
            }
            scalar => scalar.scalar_text(name).map(Some),
        }
        .and_then(|text| match text {
            Some(t) if t.chars().count() > MAX_VALUE_CHARS => Err(invalid(
                name,
                &format!(
                    "the value has {} characters; HubSpot keeps at most {MAX_VALUE_CHARS}",
                    t.chars().count()
                ),
            )),
            other => Ok(other),
        })
    }

    fn scalar_text(&self, name: &str) -> Result<String> {
        Ok(match self {
            Value::Text(s) => s.clone(),
            Value::Bool(b) => if *b { "true" } else { "false" }.to_owned(),
            Value::Integer(digits) => {
                let body = digits.strip_prefix('-').unwrap_or(digits);
                if body.is_empty() || !body.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid(name, &format!("{digits:?} is not an integer")));
                }
                check_len(name, digits)?;
                digits.clone()
            }
            Value::Float(f) => float_text(name, *f)?,
            Value::Decimal {
                negative,
                digits,
                exponent,
            } => decimal_text(name, *negative, digits, *exponent)?,
            Value::DateTime {
                date,
                hour,
                minute,
                second,
                microsecond,
                utc_offset_micros,
            } => {
                let day_micros = (days_from_civil(*date) as i128) * 86_400_000_000;
                let clock = ((*hour as i128 * 60 + *minute as i128) * 60 + *second as i128)
                    * 1_000_000
                    + *microsecond as i128;
                let utc_micros = day_micros + clock - *utc_offset_micros as i128;
                utc_micros.div_euclid(1000).to_string()
            }
            Value::Date(date) => (days_from_civil(*date) * 86_400_000).to_string(),
            Value::List { .. } | Value::Missing => unreachable!("handled by to_hubspot"),
        })
    }
}

fn invalid(name: &str, why: &str) -> Error {
    Error::InvalidInput(format!("property '{name}': {why}"))
}

fn check_len(name: &str, text: &str) -> Result<()> {
    if text.len() > MAX_NUMBER_LEN {
        return Err(invalid(
            name,
            &format!(
                "a number of {} digits is too large to send (the limit is {MAX_NUMBER_LEN})",
                text.len()
            ),
        ));
    }
    Ok(())
}

/// Rust's `Display` for `f64` writes the shortest digits that read back as the same float and
/// never uses exponent notation: `1e20` -> `100000000000000000000`, `1e-7` -> `0.0000001`.
fn float_text(name: &str, f: f64) -> Result<String> {
    if f.is_nan() {
        // The binding layer reads NaN as missing; reaching here means a NaN inside a list.
        return Err(invalid(name, "NaN is not a number HubSpot can store"));
    }
    if f.is_infinite() {
        return Err(invalid(
            name,
            &format!("{f} is not a number HubSpot can store"),
        ));
    }
    let text = if f == 0.0 {
        "0".to_owned()
    } else {
        f.to_string()
    };
    check_len(name, &text)?;
    Ok(text)
}

fn decimal_text(name: &str, negative: bool, digits: &str, exponent: i64) -> Result<String> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(name, &format!("{digits:?} are not decimal digits")));
    }
    let total = digits.len() as i64 + exponent.abs();
    if total > MAX_NUMBER_LEN as i64 {
        return Err(invalid(
            name,
            &format!(
                "a number with {} digits and exponent {exponent} is too large to send as plain \
                 digits (the limit is {MAX_NUMBER_LEN})",
                digits.len()
            ),
        ));
    }
    let mut text = if exponent >= 0 {
        let whole = digits.trim_start_matches('0');
        if whole.is_empty() {
            "0".to_owned()
        } else {
            let mut s = whole.to_owned();
            s.extend(std::iter::repeat_n('0', exponent as usize));
            s
        }
    } else {
        let point = digits.len() as i64 + exponent;
        let (int_part, frac_part) = if point > 0 {
            let (i, f) = digits.split_at(point as usize);
            (i.trim_start_matches('0').to_owned(), f.to_owned())
        } else {
            let zeros: String = std::iter::repeat_n('0', (-point) as usize).collect();
            (String::new(), zeros + digits)
        };
        let int_part = if int_part.is_empty() {
            "0".to_owned()
        } else {
            int_part
        };
        format!("{int_part}.{frac_part}")
    };
    if negative && text.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        text.insert(0, '-');
    }
    Ok(text)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(date: CivilDate) -> i64 {
    let (m, d) = (date.month as i64, date.day as i64);
    let y = date.year as i64 - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: Value) -> String {
        v.to_hubspot("p", MissingPolicy::Skip).unwrap().unwrap()
    }

    fn date(year: i32, month: u32, day: u32) -> CivilDate {
        CivilDate { year, month, day }
    }

    #[test]
    fn floats_are_plain_shortest_digits() {
        for (f, want) in [
            (1e20, "100000000000000000000"),
            (1e-7, "0.0000001"),
            (0.1, "0.1"),
            (1.0, "1"),
            (-2.5, "-2.5"),
            (-0.0, "0"),
            (123456789.125, "123456789.125"),
            (0.30000000000000004, "0.30000000000000004"),
        ] {
            assert_eq!(text(Value::Float(f)), want);
        }
        let err = Value::Float(f64::INFINITY).to_hubspot("score", MissingPolicy::Skip);
        assert!(err.unwrap_err().to_string().contains("'score': inf"));
    }

    #[test]
    fn decimals_are_plain_digits() {
        let dec = |negative, digits: &str, exponent| Value::Decimal {
            negative,
            digits: digits.into(),
            exponent,
        };
        assert_eq!(text(dec(false, "1", 2)), "100");
        assert_eq!(text(dec(false, "150", -2)), "1.50");
        assert_eq!(text(dec(true, "5", -3)), "-0.005");
        assert_eq!(text(dec(false, "0", 5)), "0");
        assert_eq!(text(dec(true, "0", -2)), "0.00");
        assert_eq!(text(dec(false, "12345", -5)), "0.12345");
        assert_eq!(text(dec(false, "0012", 0)), "12");
        let huge = dec(false, "1", 100_000).to_hubspot("n", MissingPolicy::Skip);
        assert!(huge.unwrap_err().to_string().contains("too large"));
    }

    #[test]
    fn integers_bools_text() {
        assert_eq!(
            text(Value::Integer("-123456789012345678901234567890".into())),
            "-123456789012345678901234567890"
        );
        assert!(Value::Integer("12a".into())
            .to_hubspot("n", MissingPolicy::Skip)
            .is_err());
        assert_eq!(text(Value::Bool(true)), "true");
        assert_eq!(text(Value::Bool(false)), "false");
        assert_eq!(text(Value::Text(String::new())), "");
    }

    #[test]
    fn dates_are_epoch_millis_at_midnight_utc() {
        assert_eq!(text(Value::Date(date(1970, 1, 1))), "0");
        assert_eq!(text(Value::Date(date(2024, 8, 15))), "1723680000000");
        assert_eq!(text(Value::Date(date(1969, 12, 31))), "-86400000");
        assert_eq!(text(Value::Date(date(2000, 2, 29))), "951782400000");
    }

    #[test]
    fn datetimes_are_epoch_millis_in_utc() {
        let dt = |h, us, off| Value::DateTime {
            date: date(2024, 8, 15),
            hour: h,
            minute: 9,
            second: 13,
            microsecond: us,
            utc_offset_micros: off,
        };
        assert_eq!(text(dt(17, 648_000, 0)), "1723741753648");
        // 19:09:13.648+02:00 is the same instant.
        assert_eq!(text(dt(19, 648_999, 7_200_000_000)), "1723741753648");
        // Before the epoch, milliseconds are floored, as Python's `//` does.
        let early = Value::DateTime {
            date: date(1969, 12, 31),
            hour: 23,
            minute: 59,
            second: 59,
            microsecond: 999_500,
            utc_offset_micros: 0,
        };
        assert_eq!(text(early), "-1");
    }

    #[test]
    fn lists_join_with_semicolons() {
        let items = vec![
            Value::Text("b".into()),
            Value::Text("a".into()),
            Value::Integer("3".into()),
        ];
        assert_eq!(
            text(Value::List {
                items: items.clone(),
                sort: false
            }),
            "b;a;3"
        );
        assert_eq!(text(Value::List { items, sort: true }), "3;a;b");
        assert_eq!(
            text(Value::List {
                items: vec![],
                sort: false
            }),
            ""
        );
        let nested = Value::List {
            items: vec![Value::List {
                items: vec![],
                sort: false,
            }],
            sort: false,
        };
        assert!(nested
            .to_hubspot("tags", MissingPolicy::Skip)
            .unwrap_err()
            .to_string()
            .contains("'tags'"));
        let holey = Value::List {
            items: vec![Value::Missing],
            sort: false,
        };
        assert!(holey.to_hubspot("tags", MissingPolicy::Skip).is_err());
    }

    #[test]
    fn missing_is_left_out_or_cleared() {
        assert_eq!(
            Value::Missing.to_hubspot("p", MissingPolicy::Skip).unwrap(),
            None
        );
        assert_eq!(
            Value::Missing
                .to_hubspot("p", MissingPolicy::Clear)
                .unwrap(),
            Some(String::new())
        );
    }
}
