//! Arithmetic expressions of the catalog: `extended_price * (1 - discount)` over columns (a
//! metric's `input`) and `depDelay / departed` over metrics (a post-aggregation).
//!
//! Grammar: `+ - * /`, unary minus, parentheses, numbers and names `[A-Za-z_][A-Za-z0-9_]*`.
//! Division by zero evaluates to 0 (Druid's arithmetic post-aggregator semantics).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinOp {
    pub fn symbol(self) -> char {
        match self {
            BinOp::Add => '+',
            BinOp::Sub => '-',
            BinOp::Mul => '*',
            BinOp::Div => '/',
        }
    }

    /// Applies the operator with Druid semantics (x / 0 = 0).
    #[inline]
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            BinOp::Add => a + b,
            BinOp::Sub => a - b,
            BinOp::Mul => a * b,
            BinOp::Div => {
                if b == 0.0 {
                    0.0
                } else {
                    a / b
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(f64),
    Ref(String),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
}

impl Expr {
    /// Names referenced, in first-appearance order, without duplicates.
    pub fn refs(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_refs(&mut out);
        out
    }

    fn collect_refs(&self, out: &mut Vec<String>) {
        match self {
            Expr::Num(_) => {}
            Expr::Ref(n) => {
                if !out.contains(n) {
                    out.push(n.clone())
                }
            }
            Expr::Neg(e) => e.collect_refs(out),
            Expr::Bin(_, a, b) => {
                a.collect_refs(out);
                b.collect_refs(out);
            }
        }
    }

    /// Whether the expression divides (its result is then fractional).
    pub fn has_division(&self) -> bool {
        match self {
            Expr::Num(n) => n.fract() != 0.0,
            Expr::Ref(_) => false,
            Expr::Neg(e) => e.has_division(),
            Expr::Bin(op, a, b) => *op == BinOp::Div || a.has_division() || b.has_division(),
        }
    }

    /// Evaluates with `lookup` giving each name's value.
    pub fn eval(&self, lookup: &dyn Fn(&str) -> f64) -> f64 {
        match self {
            Expr::Num(n) => *n,
            Expr::Ref(r) => lookup(r),
            Expr::Neg(e) => -e.eval(lookup),
            Expr::Bin(op, a, b) => op.apply(a.eval(lookup), b.eval(lookup)),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Num(n) => write!(f, "{n}"),
            Expr::Ref(r) => f.write_str(r),
            Expr::Neg(e) => write!(f, "-({e})"),
            Expr::Bin(op, a, b) => write!(f, "({a} {} {b})", op.symbol()),
        }
    }
}

/// Parses an expression; the error says where and what was expected.
pub fn parse(text: &str) -> Result<Expr, String> {
    let tokens = tokenize(text)?;
    let mut p = Parser { tokens, pos: 0 };
    let e = p.sum()?;
    if p.pos != p.tokens.len() {
        return Err(format!("unexpected '{}' in expression '{text}'", p.tokens[p.pos]));
    }
    Ok(e)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Name(String),
    Op(char),
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Num(n) => write!(f, "{n}"),
            Tok::Name(n) => f.write_str(n),
            Tok::Op(c) => write!(f, "{c}"),
        }
    }
}

fn tokenize(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if "+-*/()".contains(c) {
            out.push(Tok::Op(c));
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let s: String = chars[start..i].iter().collect();
            let n = s.parse::<f64>().map_err(|_| format!("'{s}' is not a number in expression '{text}'"))?;
            out.push(Tok::Num(n));
        } else if c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Name(chars[start..i].iter().collect()));
        } else {
            return Err(format!("unexpected character '{c}' in expression '{text}'"));
        }
    }
    if out.is_empty() {
        return Err("empty expression".into());
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_op(&self) -> Option<char> {
        match self.tokens.get(self.pos) {
            Some(Tok::Op(c)) => Some(*c),
            _ => None,
        }
    }

    fn sum(&mut self) -> Result<Expr, String> {
        let mut left = self.product()?;
        while let Some(c @ ('+' | '-')) = self.peek_op() {
            self.pos += 1;
            let right = self.product()?;
            let op = if c == '+' { BinOp::Add } else { BinOp::Sub };
            left = Expr::Bin(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn product(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while let Some(c @ ('*' | '/')) = self.peek_op() {
            self.pos += 1;
            let right = self.unary()?;
            let op = if c == '*' { BinOp::Mul } else { BinOp::Div };
            left = Expr::Bin(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_op() == Some('-') {
            self.pos += 1;
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<Expr, String> {
        let tok = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        match tok {
            Some(Tok::Num(n)) => Ok(Expr::Num(n)),
            Some(Tok::Name(n)) => Ok(Expr::Ref(n)),
            Some(Tok::Op('(')) => {
                let e = self.sum()?;
                if self.peek_op() != Some(')') {
                    return Err("missing ')'".into());
                }
                self.pos += 1;
                Ok(e)
            }
            Some(t) => Err(format!("unexpected '{t}'")),
            None => Err("expression ends too early".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_and_parentheses() {
        let e = parse("extended_price * (1 - discount) * (1 + tax)").unwrap();
        assert_eq!(e.refs(), vec!["extended_price", "discount", "tax"]);
        let v = e.eval(&|n| match n {
            "extended_price" => 100.0,
            "discount" => 0.1,
            _ => 0.5,
        });
        assert!((v - 135.0).abs() < 1e-9);
        assert_eq!(parse("a - b - c").unwrap().eval(&|n| if n == "a" { 10.0 } else { 3.0 }), 4.0);
        assert_eq!(parse("-a * 2").unwrap().eval(&|_| 3.0), -6.0);
    }

    #[test]
    fn division_by_zero_is_zero() {
        assert_eq!(parse("a / b").unwrap().eval(&|n| if n == "a" { 5.0 } else { 0.0 }), 0.0);
        assert!(parse("a / b").unwrap().has_division());
        assert!(!parse("a - b").unwrap().has_division());
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(parse("a +").unwrap_err().contains("ends too early"));
        assert!(parse("a $ b").unwrap_err().contains("unexpected character '$'"));
        assert!(parse("(a").unwrap_err().contains("missing ')'"));
        assert!(parse("a b").unwrap_err().contains("unexpected 'b'"));
    }
}
