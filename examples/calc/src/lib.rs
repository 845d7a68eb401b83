//! Orb example: small numeric functions and an identity function over a
//! record that holds every WIT value type.

wit_bindgen::generate!({
    path: "wit",
    world: "calc",
});

struct Calc;

impl Guest for Calc {
    fn add(a: i32, b: i32) -> i32 {
        a.wrapping_add(b)
    }

    fn divide(a: f64, b: f64) -> Result<f64, String> {
        if b == 0.0 {
            Err("division by zero".to_string())
        } else {
            Ok(a / b)
        }
    }

    fn stats(values: Vec<f64>) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let count = values.len();
        let sum: f64 = values.iter().sum();
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        Some(Summary {
            count: count as u32,
            mean: sum / count as f64,
            min,
            max,
        })
    }

    fn classify(n: i64) -> Sign {
        match n.signum() {
            -1 => Sign::Negative,
            0 => Sign::Zero,
            _ => Sign::Positive,
        }
    }

    fn area(s: Shape) -> f64 {
        match s {
            Shape::Circle(r) => std::f64::consts::PI * r * r,
            Shape::Rect((w, h)) => w * h,
            Shape::Point => 0.0,
        }
    }

    fn roundtrip(v: Everything) -> Everything {
        v
    }
}

export!(Calc);
