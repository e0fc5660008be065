//! Maven version ordering: the algorithm of Maven's `ComparableVersion`
//! (maven-artifact, the 4.x line with combination items such as `rc1`),
//! re-stated in Rust. Every string is a Maven version; the tokens are
//! numbers, qualifiers, `qualifier+number` combinations, and sub-lists
//! opened by `-` or by a digit/letter transition.

use std::cmp::Ordering;

/// Known qualifiers, least to greatest; `""` is the release itself.
const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
/// Qualifiers that sort as the release.
const RELEASE_QUALIFIERS: [&str; 3] = ["ga", "final", "release"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    /// Decimal digits without leading zeros; empty is zero.
    Number(String),
    /// A qualifier, lowercase, aliases resolved.
    Text(String),
    /// A qualifier directly followed by a number (`rc1`, `alpha-2`).
    Combination(String, String),
    List(Vec<Item>),
}

/// A parsed Maven version.
#[derive(Debug, Clone)]
pub struct MavenVersion {
    items: Vec<Item>,
}

impl PartialEq for MavenVersion {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for MavenVersion {}
impl PartialOrd for MavenVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for MavenVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_lists(&self.items, Some(&other.items))
    }
}

fn number(digits: &str) -> Item {
    Item::Number(digits.trim_start_matches('0').to_owned())
}

fn text(value: &str, followed_by_digit: bool) -> String {
    let value = match value {
        "a" if followed_by_digit => "alpha",
        "b" if followed_by_digit => "beta",
        "m" if followed_by_digit => "milestone",
        "cr" => "rc",
        other => other,
    };
    value.to_owned()
}

fn combination(value: &str) -> Item {
    let value: String = value.chars().filter(|&c| c != '-').collect();
    let split = value
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(value.len());
    let (letters, digits) = value.split_at(split);
    let Item::Number(n) = number(digits) else {
        unreachable!("number() makes numbers")
    };
    Item::Combination(text(letters, true), n)
}

fn item(is_combination: bool, is_digit: bool, buf: &str) -> Item {
    if is_combination {
        combination(buf)
    } else if is_digit {
        number(buf)
    } else {
        Item::Text(text(buf, false))
    }
}

impl MavenVersion {
    pub fn parse(version: &str) -> MavenVersion {
        let lower = version.to_lowercase();
        let chars: Vec<char> = lower.chars().collect();
        let sub = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
        // Each `-` or transition opens a list inside the current one, and
        // parsing never returns to an outer list: the nesting is a chain.
        let mut lists: Vec<Vec<Item>> = vec![Vec::new()];
        let mut is_digit = false;
        let mut is_combination = false;
        let mut start = 0;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let cur = lists.len() - 1;
            if c == '.' {
                if i == start {
                    lists[cur].push(Item::Number(String::new()));
                } else {
                    let it = item(is_combination, is_digit, &sub(start, i));
                    lists[cur].push(it);
                }
                is_combination = false;
                start = i + 1;
            } else if c == '-' {
                if i == start {
                    lists[cur].push(Item::Number(String::new()));
                } else {
                    // `X-1` reads as `X1`.
                    if !is_digit && i != chars.len() - 1 && chars[i + 1].is_ascii_digit() {
                        is_combination = true;
                        i += 1;
                        continue;
                    }
                    let it = item(is_combination, is_digit, &sub(start, i));
                    lists[cur].push(it);
                }
                start = i + 1;
                if !lists[cur].is_empty() {
                    lists.push(Vec::new());
                }
                is_combination = false;
            } else if c.is_ascii_digit() {
                if !is_digit && i > start {
                    is_combination = true;
                    if !lists[cur].is_empty() {
                        lists.push(Vec::new());
                    }
                }
                is_digit = true;
            } else {
                if is_digit && i > start {
                    let it = item(is_combination, true, &sub(start, i));
                    lists[cur].push(it);
                    start = i;
                    lists.push(Vec::new());
                    is_combination = false;
                }
                is_digit = false;
            }
            i += 1;
        }
        if chars.len() > start {
            // `1.0.0.X1 < 1.0.0-X2`: `.X` reads as `-X` for a qualifier X.
            if !is_digit && !lists.last().is_some_and(Vec::is_empty) {
                lists.push(Vec::new());
            }
            let it = item(is_combination, is_digit, &sub(start, chars.len()));
            lists.last_mut().expect("root list").push(it);
        }
        // Normalise innermost first, each list then closing into its parent.
        let mut inner: Option<Vec<Item>> = None;
        while let Some(mut list) = lists.pop() {
            if let Some(child) = inner.take() {
                list.push(Item::List(child));
            }
            normalize(&mut list);
            inner = Some(list);
        }
        MavenVersion {
            items: inner.unwrap_or_default(),
        }
    }
}

fn is_null(item: &Item) -> bool {
    match item {
        Item::Number(n) => n.is_empty(),
        Item::Text(t) => t.is_empty(),
        Item::Combination(..) => false,
        Item::List(l) => l.is_empty(),
    }
}

/// Drops trailing zeros and empty lists, and zeros before a qualifier.
fn normalize(list: &mut Vec<Item>) {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        if !is_null(&list[i]) {
            continue;
        }
        let remove = match list.get(i + 1) {
            None | Some(Item::Text(_)) => true,
            Some(Item::List(next)) => {
                matches!(next.first(), Some(Item::Combination(..) | Item::Text(_)))
            }
            Some(_) => false,
        };
        if remove {
            list.remove(i);
        }
    }
}

fn cmp_numbers(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// The sort key of a qualifier: known ones by rank, unknown ones after all
/// of them in lexical order.
fn comparable_qualifier(q: &str) -> String {
    if RELEASE_QUALIFIERS.contains(&q) {
        return "5".into();
    }
    match QUALIFIERS.iter().position(|k| *k == q) {
        Some(i) => i.to_string(),
        None => format!("{}-{q}", QUALIFIERS.len()),
    }
}

fn cmp_text(a: &str, b: Option<&str>) -> Ordering {
    comparable_qualifier(a).cmp(&comparable_qualifier(b.unwrap_or("")))
}

/// `a` against `b`, where `None` is a missing item (the shorter side).
fn cmp_item(a: &Item, b: Option<&Item>) -> Ordering {
    use Ordering::*;
    match (a, b) {
        (Item::Number(n), None) => {
            if n.is_empty() {
                Equal
            } else {
                Greater
            }
        }
        (Item::Number(x), Some(Item::Number(y))) => cmp_numbers(x, y),
        (Item::Number(_), Some(_)) => Greater,

        (Item::Text(t), None) => cmp_text(t, None),
        (Item::Text(_), Some(Item::Number(_) | Item::List(_))) => Less,
        (Item::Text(x), Some(Item::Text(y))) => cmp_text(x, Some(y)),
        (Item::Text(x), Some(Item::Combination(y, _))) => match cmp_text(x, Some(y)) {
            Equal => Less,
            o => o,
        },

        (Item::Combination(t, _), None) => cmp_text(t, None),
        (Item::Combination(..), Some(Item::Number(_) | Item::List(_))) => Less,
        (Item::Combination(x, _), Some(Item::Text(y))) => match cmp_text(x, Some(y)) {
            Equal => Greater,
            o => o,
        },
        (Item::Combination(x, xn), Some(Item::Combination(y, yn))) => {
            cmp_text(x, Some(y)).then_with(|| cmp_numbers(xn, yn))
        }

        (Item::List(l), None) => l
            .iter()
            .map(|i| cmp_item(i, None))
            .find(|o| o.is_ne())
            .unwrap_or(Equal),
        (Item::List(_), Some(Item::Number(_))) => Less,
        (Item::List(_), Some(Item::Text(_) | Item::Combination(..))) => Greater,
        (Item::List(l), Some(Item::List(r))) => cmp_lists(l, Some(r)),
    }
}

fn cmp_lists(l: &[Item], r: Option<&[Item]>) -> Ordering {
    let Some(r) = r else {
        return cmp_item(&Item::List(l.to_vec()), None);
    };
    let n = l.len().max(r.len());
    for i in 0..n {
        let o = match (l.get(i), r.get(i)) {
            (Some(a), b) => cmp_item(a, b),
            (None, Some(b)) => cmp_item(b, None).reverse(),
            (None, None) => Ordering::Equal,
        };
        if o.is_ne() {
            return o;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_zeros_and_qualifiers() {
        let v = MavenVersion::parse;
        assert_eq!(v("1.0.0"), v("1"));
        assert!(v("1.0-alpha-1") < v("1.0"));
        assert!(v("1.0-SNAPSHOT") < v("1.0"));
    }
}
