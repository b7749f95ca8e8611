//! Manufactured solutions written as expressions in `x` (and `y`), e.g. `sin(500*x) - 2*(x - 0.5)^2`.
//!
//! An expression is parsed once and evaluated on [`Jet`]s (forward-mode differentiation carrying
//! the value, the gradient and the pure second derivatives), so a config gives only `u` and the
//! source term `f = −Δu` (or the Allen–Cahn one) follows exactly, with no finite differences.
//!
//! Grammar: numbers (`2`, `0.5`, `1e-3`), the variables `x` and `y`, the constants `pi` and `e`,
//! `+ - * / ^` (`^` binds tightest and groups to the right; unary minus binds looser than `^`, so
//! `-x^2 = -(x^2)`), parentheses, and the functions `sin cos tan exp ln log sqrt tanh sinh cosh
//! atan` (`log` is the natural logarithm). Multiplication is always written: `100*x`, not `100x`.

use thiserror::Error;

#[derive(Debug, Error, Clone, PartialEq)]
#[error("column {column}: {message}")]
pub struct ExprError {
    /// 1-based character column in the expression.
    pub column: usize,
    pub message: String,
}

/// A value with its first derivatives and pure second derivatives in `x` and `y`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Jet {
    pub value: f64,
    pub d: [f64; 2],
    pub dd: [f64; 2],
}

impl Jet {
    fn constant(value: f64) -> Self {
        Self {
            value,
            d: [0.0; 2],
            dd: [0.0; 2],
        }
    }

    fn variable(value: f64, axis: usize) -> Self {
        let mut j = Self::constant(value);
        j.d[axis] = 1.0;
        j
    }

    /// `f(self)` given `f`, `f'` and `f''` at `self.value` (the chain rule to second order).
    fn chain(self, f: f64, f1: f64, f2: f64) -> Self {
        let mut out = Self::constant(f);
        for k in 0..2 {
            out.d[k] = f1 * self.d[k];
            out.dd[k] = f2 * self.d[k] * self.d[k] + f1 * self.dd[k];
        }
        out
    }

    fn add(self, o: Self, sign: f64) -> Self {
        let mut out = Self::constant(self.value + sign * o.value);
        for k in 0..2 {
            out.d[k] = self.d[k] + sign * o.d[k];
            out.dd[k] = self.dd[k] + sign * o.dd[k];
        }
        out
    }

    fn mul(self, o: Self) -> Self {
        let mut out = Self::constant(self.value * o.value);
        for k in 0..2 {
            out.d[k] = self.d[k] * o.value + self.value * o.d[k];
            out.dd[k] = self.dd[k] * o.value + 2.0 * self.d[k] * o.d[k] + self.value * o.dd[k];
        }
        out
    }

    fn recip(self) -> Self {
        let v = self.value;
        self.chain(1.0 / v, -1.0 / (v * v), 2.0 / (v * v * v))
    }

    fn is_constant(&self) -> bool {
        self.d == [0.0; 2] && self.dd == [0.0; 2]
    }

    /// The Laplacian `u_xx + u_yy`.
    pub fn laplacian(&self) -> f64 {
        self.dd[0] + self.dd[1]
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Sin,
    Cos,
    Tan,
    Exp,
    Ln,
    Sqrt,
    Tanh,
    Sinh,
    Cosh,
    Atan,
}

impl Func {
    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "sin" => Self::Sin,
            "cos" => Self::Cos,
            "tan" => Self::Tan,
            "exp" => Self::Exp,
            "ln" | "log" => Self::Ln,
            "sqrt" => Self::Sqrt,
            "tanh" => Self::Tanh,
            "sinh" => Self::Sinh,
            "cosh" => Self::Cosh,
            "atan" => Self::Atan,
            _ => return None,
        })
    }

    /// `(f, f', f'')` at `a`.
    fn eval(self, a: f64) -> (f64, f64, f64) {
        match self {
            Self::Sin => (a.sin(), a.cos(), -a.sin()),
            Self::Cos => (a.cos(), -a.sin(), -a.cos()),
            Self::Tan => {
                let t = a.tan();
                let s = 1.0 + t * t;
                (t, s, 2.0 * t * s)
            }
            Self::Exp => (a.exp(), a.exp(), a.exp()),
            Self::Ln => (a.ln(), 1.0 / a, -1.0 / (a * a)),
            Self::Sqrt => {
                let s = a.sqrt();
                (s, 0.5 / s, -0.25 / (s * a))
            }
            Self::Tanh => {
                let t = a.tanh();
                let s = 1.0 - t * t;
                (t, s, -2.0 * t * s)
            }
            Self::Sinh => (a.sinh(), a.cosh(), a.sinh()),
            Self::Cosh => (a.cosh(), a.sinh(), a.cosh()),
            Self::Atan => {
                let s = 1.0 / (1.0 + a * a);
                (a.atan(), s, -2.0 * a * s * s)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Num(f64),
    Var(usize),
    Neg(Box<Node>),
    Add(Box<Node>, Box<Node>),
    Sub(Box<Node>, Box<Node>),
    Mul(Box<Node>, Box<Node>),
    Div(Box<Node>, Box<Node>),
    Pow(Box<Node>, Box<Node>),
    Call(Func, Box<Node>),
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    root: Node,
    /// 1 if only `x` appears, 2 if `y` does.
    dim: usize,
}

impl Expr {
    pub fn parse(text: &str) -> Result<Self, ExprError> {
        let chars: Vec<char> = text.chars().collect();
        let mut p = Parser {
            chars: &chars,
            at: 0,
            dim: 1,
        };
        let root = p.sum()?;
        p.skip_space();
        if p.at < chars.len() {
            return Err(p.error(format!(
                "unexpected `{}`; multiplication is written with `*` (e.g. 100*x)",
                chars[p.at]
            )));
        }
        Ok(Self { root, dim: p.dim })
    }

    /// The number of variables the expression uses: 1 (`x`) or 2 (`x`, `y`).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The value and derivatives at `(x, y)`.
    pub fn jet(&self, x: f64, y: f64) -> Jet {
        eval(&self.root, [x, y])
    }

    pub fn value(&self, x: f64, y: f64) -> f64 {
        self.jet(x, y).value
    }
}

fn eval(node: &Node, at: [f64; 2]) -> Jet {
    match node {
        Node::Num(v) => Jet::constant(*v),
        Node::Var(k) => Jet::variable(at[*k], *k),
        Node::Neg(a) => Jet::constant(0.0).add(eval(a, at), -1.0),
        Node::Add(a, b) => eval(a, at).add(eval(b, at), 1.0),
        Node::Sub(a, b) => eval(a, at).add(eval(b, at), -1.0),
        Node::Mul(a, b) => eval(a, at).mul(eval(b, at)),
        Node::Div(a, b) => eval(a, at).mul(eval(b, at).recip()),
        Node::Pow(a, b) => {
            let (base, exp) = (eval(a, at), eval(b, at));
            if exp.is_constant() {
                let (v, p) = (base.value, exp.value);
                base.chain(
                    v.powf(p),
                    p * v.powf(p - 1.0),
                    p * (p - 1.0) * v.powf(p - 2.0),
                )
            } else {
                // a^b = exp(b ln a).
                let (l, l1, l2) = Func::Ln.eval(base.value);
                let ln = base.chain(l, l1, l2);
                let t = exp.mul(ln);
                let e = t.value.exp();
                t.chain(e, e, e)
            }
        }
        Node::Call(f, a) => {
            let arg = eval(a, at);
            let (v, d1, d2) = f.eval(arg.value);
            arg.chain(v, d1, d2)
        }
    }
}

struct Parser<'a> {
    chars: &'a [char],
    at: usize,
    dim: usize,
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> ExprError {
        ExprError {
            column: self.at + 1,
            message: message.into(),
        }
    }

    fn skip_space(&mut self) {
        while self.at < self.chars.len() && self.chars[self.at].is_whitespace() {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_space();
        self.chars.get(self.at).copied()
    }

    /// Consumes a `)`.
    fn close(&mut self) -> Result<(), ExprError> {
        match self.peek() {
            Some(')') => {
                self.at += 1;
                Ok(())
            }
            Some(c) if c.is_ascii_alphanumeric() || c == '(' => Err(self.error(format!(
                "expected `)` or an operator before `{c}`; multiplication is written with `*` (e.g. 100*x)"
            ))),
            _ => Err(self.error("expected `)`")),
        }
    }

    fn sum(&mut self) -> Result<Node, ExprError> {
        self.left_assoc(['+', '-'], Self::product)
    }

    fn product(&mut self) -> Result<Node, ExprError> {
        self.left_assoc(['*', '/'], Self::unary)
    }

    /// `next (op next)*`, grouped from the left, for the two operators `ops` of one precedence.
    fn left_assoc(
        &mut self,
        ops: [char; 2],
        next: fn(&mut Self) -> Result<Node, ExprError>,
    ) -> Result<Node, ExprError> {
        let mut left = next(self)?;
        while let Some(c) = self.peek().filter(|c| ops.contains(c)) {
            self.at += 1;
            let (l, r) = (Box::new(left), Box::new(next(self)?));
            left = match c {
                '+' => Node::Add(l, r),
                '-' => Node::Sub(l, r),
                '*' => Node::Mul(l, r),
                _ => Node::Div(l, r),
            };
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        match self.peek() {
            Some('-') => {
                self.at += 1;
                Ok(Node::Neg(Box::new(self.unary()?)))
            }
            Some('+') => {
                self.at += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Node, ExprError> {
        let base = self.atom()?;
        if self.peek() == Some('^') {
            self.at += 1;
            let exponent = self.unary()?;
            return Ok(Node::Pow(Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Node, ExprError> {
        let Some(c) = self.peek() else {
            return Err(self.error("unexpected end of the expression"));
        };
        if c == '(' {
            self.at += 1;
            let inner = self.sum()?;
            self.close()?;
            return Ok(inner);
        }
        if c.is_ascii_digit() || c == '.' {
            let start = self.at;
            while self.at < self.chars.len()
                && (self.chars[self.at].is_ascii_digit() || self.chars[self.at] == '.')
            {
                self.at += 1;
            }
            // An exponent: e or E, an optional sign, digits.
            if self.at < self.chars.len() && matches!(self.chars[self.at], 'e' | 'E') {
                let mut k = self.at + 1;
                if k < self.chars.len() && matches!(self.chars[k], '+' | '-') {
                    k += 1;
                }
                if k < self.chars.len() && self.chars[k].is_ascii_digit() {
                    while k < self.chars.len() && self.chars[k].is_ascii_digit() {
                        k += 1;
                    }
                    self.at = k;
                }
            }
            let text: String = self.chars[start..self.at].iter().collect();
            return text.parse().map(Node::Num).map_err(|_| ExprError {
                column: start + 1,
                message: format!("`{text}` is not a number"),
            });
        }
        if c.is_ascii_alphabetic() {
            let start = self.at;
            while self.at < self.chars.len() && self.chars[self.at].is_ascii_alphanumeric() {
                self.at += 1;
            }
            let name: String = self.chars[start..self.at].iter().collect();
            return match name.as_str() {
                "x" => Ok(Node::Var(0)),
                "y" => {
                    self.dim = 2;
                    Ok(Node::Var(1))
                }
                "pi" => Ok(Node::Num(std::f64::consts::PI)),
                "e" => Ok(Node::Num(std::f64::consts::E)),
                _ => match Func::parse(&name) {
                    Some(f) => {
                        if self.peek() != Some('(') {
                            return Err(self.error(format!("expected `(` after `{name}`")));
                        }
                        self.at += 1;
                        let arg = self.sum()?;
                        self.close()?;
                        Ok(Node::Call(f, Box::new(arg)))
                    }
                    None => Err(ExprError {
                        column: start + 1,
                        message: format!(
                            "unknown name `{name}`; expected x, y, pi, e or one of the functions sin, cos, tan, exp, ln, log, sqrt, tanh, sinh, cosh, atan"
                        ),
                    }),
                },
            };
        }
        Err(self.error(format!("unexpected `{c}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_derivatives_match_the_closed_forms() {
        let e = Expr::parse("sin(500*x) - 2*(x - 0.5)^2").unwrap();
        assert_eq!(e.dim(), 1);
        let x = 0.3;
        let j = e.jet(x, 0.0);
        assert!((j.value - ((500.0 * x).sin() - 2.0 * (x - 0.5f64).powi(2))).abs() < 1e-14);
        assert!((j.d[0] - (500.0 * (500.0 * x).cos() - 4.0 * (x - 0.5))).abs() < 1e-9);
        assert!((j.dd[0] - (-250_000.0 * (500.0 * x).sin() - 4.0)).abs() < 1e-7);

        let e = Expr::parse("x*sin(200*x) + exp(-x)/y + 2^x * y^3").unwrap();
        assert_eq!(e.dim(), 2);
        let (x, y) = (0.7, 1.3);
        let j = e.jet(x, y);
        let uxx = 400.0 * (200.0 * x).cos() - 40_000.0 * x * (200.0 * x).sin()
            + (-x).exp() / y
            + 2f64.ln().powi(2) * 2f64.powf(x) * y.powi(3);
        let uyy = 2.0 * (-x).exp() / y.powi(3) + 6.0 * 2f64.powf(x) * y;
        assert!(
            (j.dd[0] - uxx).abs() < 1e-9 * uxx.abs().max(1.0),
            "{} vs {uxx}",
            j.dd[0]
        );
        assert!((j.dd[1] - uyy).abs() < 1e-12 * uyy.abs().max(1.0));
    }

    #[test]
    fn precedence_follows_the_usual_rules() {
        let v = |s: &str| Expr::parse(s).unwrap().value(2.0, 3.0);
        assert_eq!(v("-x^2"), -4.0);
        assert_eq!(v("2^3^2"), 512.0);
        assert_eq!(v("1 - 2 - 3"), -4.0);
        assert_eq!(v("12 / 2 / 3"), 2.0);
        assert_eq!(v("1 + 2*x*y"), 13.0);
        assert_eq!(v("1.5e2 + 2E-1"), 150.2);
        assert!((v("cos(pi) + ln(e)")).abs() < 1e-15);
    }

    #[test]
    fn errors_name_the_column_and_the_problem() {
        let err = |s: &str| Expr::parse(s).unwrap_err();
        let e = err("sin(100x)");
        assert_eq!(e.column, 8);
        assert!(e.message.contains("`*`"), "{e}");
        assert!(err("foo(x)").message.contains("unknown name `foo`"));
        assert!(err("sin x").message.contains("expected `(`"));
        assert!(err("(x + 1").message.contains("expected `)`"));
        assert!(err("x +").message.contains("end of the expression"));
        assert_eq!(err("x + z").column, 5);
    }
}
