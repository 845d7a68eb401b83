//! The JSON ↔ component-value mapping.
//!
//! | WIT | JSON |
//! | --- | --- |
//! | `bool` | `true` / `false` |
//! | integers, `f32`, `f64` | numbers; 64-bit integers also as decimal strings (above 2^53) |
//! | `char` | a one-character string |
//! | `string` | a string |
//! | `list<T>` | an array |
//! | `record` | an object keyed by the field names as written in WIT |
//! | `tuple<…>` | an array of the same length |
//! | `option<T>` | `null` or the value |
//! | `result<T, E>` | `{"ok": v}` / `{"err": e}` (`null` payload when the side has no type) |
//! | `variant` | `{"case": payload}`, or `"case"` for a case without payload |
//! | `enum` | `"case"` |
//! | `flags` | an array of the set flag names |
//!
//! Results use the same mapping. `option<option<T>>` is ambiguous in JSON
//! (`null` is always the outer `none`), as in most JSON mappings.

use serde_json::{Map, Number, Value as Json};
use wasmtime::component::{Type, Val};

/// A value that does not fit its type. `path` locates it (`v.big-u64[2]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Mismatch {
    pub path: String,
    pub expected: String,
    pub message: String,
}

type R<T> = Result<T, Mismatch>;

fn mismatch(path: &str, ty: &Type, message: impl Into<String>) -> Mismatch {
    Mismatch {
        path: path.to_string(),
        expected: type_name(ty),
        message: message.into(),
    }
}

fn describe(v: &Json) -> String {
    let s = v.to_string();
    let kind = match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    };
    if s.len() > 40 {
        kind.to_string()
    } else {
        format!("{kind} {s}")
    }
}

/// A WIT-like rendering of a type, for signatures and error messages.
pub fn type_name(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(l) => format!("list<{}>", type_name(&l.ty())),
        Type::Map(m) => format!("map<{}, {}>", type_name(&m.key()), type_name(&m.value())),
        Type::FixedLengthList(l) => format!("list<{}, {}>", type_name(&l.ty()), l.len()),
        Type::Record(r) => {
            let fields: Vec<String> = r
                .fields()
                .map(|f| format!("{}: {}", f.name, type_name(&f.ty)))
                .collect();
            format!("record {{ {} }}", fields.join(", "))
        }
        Type::Tuple(t) => {
            let items: Vec<String> = t.types().map(|t| type_name(&t)).collect();
            format!("tuple<{}>", items.join(", "))
        }
        Type::Variant(v) => {
            let cases: Vec<String> = v
                .cases()
                .map(|c| match c.ty {
                    Some(t) => format!("{}({})", c.name, type_name(&t)),
                    None => c.name.to_string(),
                })
                .collect();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Enum(e) => format!("enum {{ {} }}", e.names().collect::<Vec<_>>().join(", ")),
        Type::Flags(f) => format!("flags {{ {} }}", f.names().collect::<Vec<_>>().join(", ")),
        Type::Option(o) => format!("option<{}>", type_name(&o.ty())),
        Type::Result(r) => {
            let side = |t: Option<Type>| t.map_or("_".to_string(), |t| type_name(&t));
            format!("result<{}, {}>", side(r.ok()), side(r.err()))
        }
        Type::Own(_) => "own<resource>".into(),
        Type::Borrow(_) => "borrow<resource>".into(),
        Type::Future(_) => "future".into(),
        Type::Stream(_) => "stream".into(),
        Type::ErrorContext => "error-context".into(),
    }
}

fn int_i64(path: &str, ty: &Type, v: &Json) -> R<i64> {
    match v {
        Json::Number(n) => n
            .as_i64()
            .ok_or_else(|| mismatch(path, ty, format!("got {}", describe(v)))),
        Json::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| mismatch(path, ty, format!("got {}", describe(v)))),
        _ => Err(mismatch(path, ty, format!("got {}", describe(v)))),
    }
}

fn int_u64(path: &str, ty: &Type, v: &Json) -> R<u64> {
    match v {
        Json::Number(n) => n
            .as_u64()
            .ok_or_else(|| mismatch(path, ty, format!("got {}", describe(v)))),
        Json::String(s) => s
            .trim()
            .parse::<u64>()
            .map_err(|_| mismatch(path, ty, format!("got {}", describe(v)))),
        _ => Err(mismatch(path, ty, format!("got {}", describe(v)))),
    }
}

fn ranged<T: TryFrom<i64>>(path: &str, ty: &Type, v: &Json) -> R<T> {
    let n = int_i64(path, ty, v)?;
    T::try_from(n).map_err(|_| mismatch(path, ty, format!("{n} is out of range")))
}

fn float(path: &str, ty: &Type, v: &Json) -> R<f64> {
    match v {
        Json::Number(n) => n
            .as_f64()
            .ok_or_else(|| mismatch(path, ty, format!("got {}", describe(v)))),
        Json::String(s) if matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity") => {
            Ok(s.parse::<f64>().unwrap_or(match s.as_str() {
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                _ => f64::NAN,
            }))
        }
        _ => Err(mismatch(path, ty, format!("got {}", describe(v)))),
    }
}

fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Converts `v` to a component value of type `ty`.
pub fn json_to_val(ty: &Type, v: &Json, path: &str) -> R<Val> {
    let bad = || mismatch(path, ty, format!("got {}", describe(v)));
    Ok(match ty {
        Type::Bool => Val::Bool(v.as_bool().ok_or_else(bad)?),
        Type::S8 => Val::S8(ranged(path, ty, v)?),
        Type::U8 => Val::U8(ranged(path, ty, v)?),
        Type::S16 => Val::S16(ranged(path, ty, v)?),
        Type::U16 => Val::U16(ranged(path, ty, v)?),
        Type::S32 => Val::S32(ranged(path, ty, v)?),
        Type::U32 => Val::U32(ranged(path, ty, v)?),
        Type::S64 => Val::S64(int_i64(path, ty, v)?),
        Type::U64 => Val::U64(int_u64(path, ty, v)?),
        Type::Float32 => Val::Float32(float(path, ty, v)? as f32),
        Type::Float64 => Val::Float64(float(path, ty, v)?),
        Type::Char => {
            let s = v.as_str().ok_or_else(bad)?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(mismatch(path, ty, format!("got {}", describe(v)))),
            }
        }
        Type::String => Val::String(v.as_str().ok_or_else(bad)?.to_string()),
        Type::List(l) => {
            let items = v.as_array().ok_or_else(bad)?;
            let elem = l.ty();
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(json_to_val(&elem, item, &format!("{path}[{i}]"))?);
            }
            Val::List(out)
        }
        Type::FixedLengthList(l) => {
            let items = v.as_array().ok_or_else(bad)?;
            if items.len() != l.len() as usize {
                return Err(mismatch(
                    path,
                    ty,
                    format!("got an array of {} items", items.len()),
                ));
            }
            let elem = l.ty();
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(json_to_val(&elem, item, &format!("{path}[{i}]"))?);
            }
            Val::FixedLengthList(out)
        }
        Type::Map(m) => {
            // Maps are `[[key, value], …]` (keys need not be strings).
            let items = v.as_array().ok_or_else(bad)?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let pair = item.as_array().filter(|p| p.len() == 2).ok_or_else(|| {
                    mismatch(&format!("{path}[{i}]"), ty, "expected a [key, value] pair")
                })?;
                out.push((
                    json_to_val(&m.key(), &pair[0], &format!("{path}[{i}][0]"))?,
                    json_to_val(&m.value(), &pair[1], &format!("{path}[{i}][1]"))?,
                ));
            }
            Val::Map(out)
        }
        Type::Record(r) => {
            let obj = v.as_object().ok_or_else(bad)?;
            let mut out = Vec::new();
            for f in r.fields() {
                let fpath = child(path, f.name);
                let fv = match obj.get(f.name) {
                    Some(fv) => fv,
                    // An absent option field is `none`.
                    None if matches!(f.ty, Type::Option(_)) => &Json::Null,
                    None => {
                        return Err(Mismatch {
                            path: fpath,
                            expected: type_name(&f.ty),
                            message: "missing field".into(),
                        });
                    }
                };
                out.push((f.name.to_string(), json_to_val(&f.ty, fv, &fpath)?));
            }
            if let Some(extra) = obj
                .keys()
                .find(|k| !r.fields().any(|f| f.name == k.as_str()))
            {
                return Err(mismatch(&child(path, extra), ty, "unknown field"));
            }
            Val::Record(out)
        }
        Type::Tuple(t) => {
            let items = v.as_array().ok_or_else(bad)?;
            if items.len() != t.types().len() {
                return Err(mismatch(
                    path,
                    ty,
                    format!("got an array of {} items", items.len()),
                ));
            }
            let mut out = Vec::with_capacity(items.len());
            for (i, (ety, item)) in t.types().zip(items).enumerate() {
                out.push(json_to_val(&ety, item, &format!("{path}[{i}]"))?);
            }
            Val::Tuple(out)
        }
        Type::Variant(var) => {
            let (name, payload) = case_of(v).ok_or_else(bad)?;
            let case = var
                .cases()
                .find(|c| c.name == name)
                .ok_or_else(|| mismatch(path, ty, format!("unknown case `{name}`")))?;
            let payload = match (case.ty, payload) {
                (Some(pty), Some(p)) => Some(Box::new(json_to_val(&pty, p, &child(path, name))?)),
                (Some(pty), None) => {
                    return Err(Mismatch {
                        path: child(path, name),
                        expected: type_name(&pty),
                        message: "missing payload".into(),
                    });
                }
                (None, None) | (None, Some(Json::Null)) => None,
                (None, Some(_)) => {
                    return Err(mismatch(path, ty, format!("case `{name}` has no payload")));
                }
            };
            Val::Variant(name.to_string(), payload)
        }
        Type::Enum(e) => {
            let s = v.as_str().ok_or_else(bad)?;
            if !e.names().any(|n| n == s) {
                return Err(mismatch(path, ty, format!("unknown case `{s}`")));
            }
            Val::Enum(s.to_string())
        }
        Type::Flags(f) => {
            let items = v.as_array().ok_or_else(bad)?;
            let mut out = Vec::new();
            for item in items {
                let s = item.as_str().ok_or_else(bad)?;
                if !f.names().any(|n| n == s) {
                    return Err(mismatch(path, ty, format!("unknown flag `{s}`")));
                }
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_string());
                }
            }
            Val::Flags(out)
        }
        Type::Option(o) => match v {
            Json::Null => Val::Option(None),
            v => Val::Option(Some(Box::new(json_to_val(&o.ty(), v, path)?))),
        },
        Type::Result(r) => {
            let obj = v.as_object().filter(|o| o.len() == 1).ok_or_else(|| {
                mismatch(
                    path,
                    ty,
                    format!(
                        "expected {{\"ok\": …}} or {{\"err\": …}}, got {}",
                        describe(v)
                    ),
                )
            })?;
            let (k, inner) = obj.iter().next().expect("one entry");
            let side = |t: Option<Type>, p: &str| -> R<Option<Box<Val>>> {
                match t {
                    Some(t) => Ok(Some(Box::new(json_to_val(&t, inner, p)?))),
                    None if inner.is_null() => Ok(None),
                    None => Err(mismatch(
                        p,
                        ty,
                        "this side of the result has no payload; use null",
                    )),
                }
            };
            match k.as_str() {
                "ok" => Val::Result(Ok(side(r.ok(), &child(path, "ok"))?)),
                "err" => Val::Result(Err(side(r.err(), &child(path, "err"))?)),
                _ => return Err(bad()),
            }
        }
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            return Err(mismatch(path, ty, "this type cannot be passed as JSON"));
        }
    })
}

/// The plainest value of `ty` as JSON (what [`json_to_val`] reads): zero,
/// `false`, `""`, `"a"`, empty lists, maps and flags, `null` for an
/// option, the first case of a variant or enum, `ok` of a result, and the
/// same for every field and item. `None` for a type no JSON can give
/// (resources, futures, streams).
pub fn sample_json(ty: &Type) -> Option<Json> {
    Some(match ty {
        Type::Bool => Json::Bool(false),
        Type::S8
        | Type::U8
        | Type::S16
        | Type::U16
        | Type::S32
        | Type::U32
        | Type::S64
        | Type::U64 => Json::from(0),
        Type::Float32 | Type::Float64 => Json::from(0.0),
        Type::Char => Json::from("a"),
        Type::String => Json::from(""),
        Type::List(_) | Type::Map(_) | Type::Flags(_) => Json::Array(Vec::new()),
        Type::FixedLengthList(l) => {
            let item = sample_json(&l.ty())?;
            Json::Array(vec![item; l.len() as usize])
        }
        Type::Record(r) => {
            let mut obj = serde_json::Map::new();
            for f in r.fields() {
                obj.insert(f.name.to_string(), sample_json(&f.ty)?);
            }
            Json::Object(obj)
        }
        Type::Tuple(t) => Json::Array(t.types().map(|t| sample_json(&t)).collect::<Option<_>>()?),
        Type::Variant(v) => {
            let case = v.cases().next()?;
            match case.ty {
                Some(t) => serde_json::json!({ case.name: sample_json(&t)? }),
                None => Json::from(case.name),
            }
        }
        Type::Enum(e) => Json::from(e.names().next()?),
        Type::Option(_) => Json::Null,
        Type::Result(r) => match r.ok() {
            Some(t) => serde_json::json!({ "ok": sample_json(&t)? }),
            None => serde_json::json!({ "ok": null }),
        },
        Type::Own(_) | Type::Borrow(_) | Type::Future(_) | Type::Stream(_) | Type::ErrorContext => {
            return None;
        }
    })
}

fn case_of(v: &Json) -> Option<(&str, Option<&Json>)> {
    match v {
        Json::String(s) => Some((s.as_str(), None)),
        Json::Object(o) if o.len() == 1 => {
            let (k, v) = o.iter().next()?;
            Some((k.as_str(), Some(v)))
        }
        _ => None,
    }
}

fn float_json(f: f64) -> Json {
    Number::from_f64(f).map_or_else(
        || {
            Json::String(if f.is_nan() {
                "NaN".into()
            } else if f > 0.0 {
                "Infinity".into()
            } else {
                "-Infinity".into()
            })
        },
        Json::Number,
    )
}

/// Converts a component value to JSON. Errors only for values with no JSON
/// form (resources, futures, streams).
pub fn val_to_json(v: &Val) -> Result<Json, String> {
    Ok(match v {
        Val::Bool(b) => Json::Bool(*b),
        Val::S8(n) => Json::from(*n),
        Val::U8(n) => Json::from(*n),
        Val::S16(n) => Json::from(*n),
        Val::U16(n) => Json::from(*n),
        Val::S32(n) => Json::from(*n),
        Val::U32(n) => Json::from(*n),
        Val::S64(n) => Json::from(*n),
        Val::U64(n) => Json::from(*n),
        Val::Float32(f) => float_json(f64::from(*f)),
        Val::Float64(f) => float_json(*f),
        Val::Char(c) => Json::String(c.to_string()),
        Val::String(s) => Json::String(s.clone()),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Json::Array(items.iter().map(val_to_json).collect::<Result<_, _>>()?)
        }
        Val::Map(pairs) => Json::Array(
            pairs
                .iter()
                .map(|(k, v)| Ok(Json::Array(vec![val_to_json(k)?, val_to_json(v)?])))
                .collect::<Result<_, String>>()?,
        ),
        Val::Record(fields) => {
            let mut m = Map::new();
            for (k, v) in fields {
                m.insert(k.clone(), val_to_json(v)?);
            }
            Json::Object(m)
        }
        Val::Variant(name, None) => Json::String(name.clone()),
        Val::Variant(name, Some(p)) => {
            let mut m = Map::new();
            m.insert(name.clone(), val_to_json(p)?);
            Json::Object(m)
        }
        Val::Enum(name) => Json::String(name.clone()),
        Val::Option(None) => Json::Null,
        Val::Option(Some(v)) => val_to_json(v)?,
        Val::Result(r) => {
            let (k, inner) = match r {
                Ok(v) => ("ok", v),
                Err(v) => ("err", v),
            };
            let mut m = Map::new();
            m.insert(
                k.to_string(),
                match inner {
                    Some(v) => val_to_json(v)?,
                    None => Json::Null,
                },
            );
            Json::Object(m)
        }
        Val::Flags(names) => Json::Array(names.iter().map(|n| Json::String(n.clone())).collect()),
        Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => {
            return Err(
                "the function returned a resource, future or stream, which has no JSON form".into(),
            );
        }
    })
}
