//! The identifier syntaxes of `medid_registry::id`, rule by rule: one table of inputs
//! and what each must give (the canonical form, or a piece of the error message), then
//! round trips, equivalences, namespaces, serde, and a stream of garbage that must
//! never make a parser panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly on purpose

use medid_registry::id::{
    Gs1Key, Handle, IdError, Identifier, Namespace, Oid, Prefix, gs1_company_prefix_matches,
};

/// What parsing one input must give.
enum Expect<'a> {
    /// Parses, and this is the canonical form.
    Ok(&'a str),
    /// Fails, and the error message contains this.
    Err(&'a str),
}
use Expect::{Err as E, Ok as C};

/// Parses `input` as an [`Identifier`] and compares with `expected`; for an identifier
/// that parses, also checks that its canonical form parses back to an equal value and
/// is its own canonical form.
fn check(input: &str, expected: &Expect<'_>) {
    let parsed = Identifier::parse(input);
    match (expected, &parsed) {
        (Expect::Ok(canonical), Ok(id)) => {
            assert_eq!(id.canonical(), *canonical, "canonical form of {input:?}");
            assert_eq!(id.to_string(), *canonical, "Display of {input:?}");
            assert_round_trip(id);
        }
        (Expect::Err(part), Err(error)) => {
            let message = error.to_string();
            assert!(
                message.contains(part),
                "error for {input:?} is {message:?}, expected it to contain {part:?}"
            );
        }
        (Expect::Ok(canonical), Err(error)) => {
            panic!("{input:?} should parse as {canonical:?}, but: {error}")
        }
        (Expect::Err(part), Ok(id)) => {
            panic!("{input:?} should fail with {part:?}, but parsed as {id}")
        }
    }
}

/// `parse(canonical(id)) == id`, and the canonical form is a fixed point.
fn assert_round_trip(id: &Identifier) {
    let canonical = id.canonical();
    let again = Identifier::parse(&canonical)
        .unwrap_or_else(|e| panic!("canonical form {canonical:?} does not parse: {e}"));
    assert_eq!(&again, id, "round trip of {canonical:?}");
    assert_eq!(again.canonical(), canonical);
    if let Identifier::Gs1(key) = id {
        let element = key.element_string();
        let from_element = Identifier::parse(&element)
            .unwrap_or_else(|e| panic!("element string {element:?} does not parse: {e}"));
        assert_eq!(&from_element, id, "element string {element:?}");
    }
}

fn run(table: &[(&str, Expect<'_>)]) {
    for (input, expected) in table {
        check(input, expected);
    }
}

#[test]
fn handles() {
    run(&[
        ("86.1000.23/PKG-0001", C("86.1000.23/PKG-0001")),
        ("20.500.12345/abc", C("20.500.12345/abc")),
        ("0.NA/20.500", C("0.na/20.500")),
        // The prefix is case-insensitive and lower-cased; the suffix is kept as written.
        ("86.ABC-x.23/Pkg-1", C("86.abc-x.23/Pkg-1")),
        ("86/a/b/c", C("86/a/b/c")),
        (
            "86/!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
            C("86/!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
        ),
        ("a-b/x", C("a-b/x")),
        // A 63-character segment, a 200-byte suffix.
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/x",
            C("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/x"),
        ),
        ("86.1000.23", E("has no `/SUFFIX`")),
        ("86.1000.23", E("PREFIX/SUFFIX")),
        ("1.2.840", E("urn:oid:1.2.3")),
        ("/PKG-1", E("the handle prefix is empty")),
        ("86.1000.23/", E("the suffix after `/` is empty")),
        ("86..23/x", E("handle prefix segment 2 `` is empty")),
        (".86/x", E("handle prefix segment 1 `` is empty")),
        ("86./x", E("handle prefix segment 2 `` is empty")),
        (
            "86.10_0/x",
            E("segment 2 `10_0` contains `_` (U+005F) at character 3"),
        ),
        ("86.-a/x", E("segment 2 `-a` starts with `-`")),
        ("86.a-/x", E("segment 2 `a-` ends with `-`")),
        ("86.é/x", E("contains `é` (U+00E9) at character 1")),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/x",
            E("has 64 characters; a segment has at most 63"),
        ),
        ("86/PKG 1", E("character 4 is ` ` (U+0020)")),
        ("86/PKG\u{7f}", E("character 4 is `\\u{7f}` (U+007F)")),
        ("86/PKG\t1", E("character 4 is `\\t` (U+0009)")),
        ("86/é", E("character 1 is `é` (U+00E9)")),
        (
            "86 /x",
            E("segment 1 `86 ` contains ` ` (U+0020) at character 3"),
        ),
        (" 86/x", E("whitespace at its start")),
        ("86/x\n", E("whitespace at its end")),
        ("", E("the identifier is empty")),
    ]);
    let long_suffix = format!("86/{}", "s".repeat(200));
    check(&long_suffix, &C(&long_suffix));
    check(
        &format!("86/{}", "s".repeat(201)),
        &E("the handle suffix is 201 bytes long; at most 200 bytes are allowed"),
    );
    let long_prefix = format!("{}/x", ["abcdefghijklmnopqrstuvwxyz"; 5].join("."));
    check(
        &long_prefix,
        &E("the handle prefix is 134 bytes long; at most 128"),
    );
    check(
        &"x".repeat(3000),
        &E("the identifier is 3000 bytes long; at most 2048"),
    );
}

#[test]
fn schemes() {
    run(&[
        (
            "hdl:86.1000/x",
            E("`hdl:` is not an identifier syntax (drop the scheme"),
        ),
        ("doi:10.1000/182", E("drop the scheme")),
        (
            "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
            E("a DID is an identity"),
        ),
        (
            "urn:epc:id:sgtin:0614141.107346.2017",
            E("`urn:epc:` is not an identifier syntax"),
        ),
        (
            "urn:epc:id:sgtin:0614141.107346.2017",
            E("the only URN namespace here is urn:oid:"),
        ),
        ("mailto:a@b", E("`mailto:` is not an identifier syntax")),
        ("ftp://host/01/09506000134352", E("`ftp:`")),
        // Not a scheme (starts with a digit): read as a handle.
        ("86.1000:x/y", E("segment 2 `1000:x` contains `:` (U+003A)")),
    ]);
}

#[test]
fn oids() {
    run(&[
        ("urn:oid:1.2.156.112604.1", C("urn:oid:1.2.156.112604.1")),
        ("URN:OID:1.2.156.112604.1", C("urn:oid:1.2.156.112604.1")),
        ("Urn:Oid:2.999", C("urn:oid:2.999")),
        ("urn:oid:0.0", C("urn:oid:0.0")),
        ("urn:oid:1.39", C("urn:oid:1.39")),
        ("urn:oid:2.40.0", C("urn:oid:2.40.0")),
        (
            "urn:oid:2.340282366920938463463374607431768211455",
            C("urn:oid:2.340282366920938463463374607431768211455"),
        ),
        ("urn:oid:", E("there are no arcs")),
        (
            "urn:oid:1",
            E("`1` has a single arc; an OID has at least two"),
        ),
        (
            "urn:oid:3.1",
            E("the first arc is 3; it must be 0 (ITU-T), 1 (ISO) or 2"),
        ),
        (
            "urn:oid:1.40",
            E("the second arc is 40; under first arc 1 it must be 0 to 39"),
        ),
        ("urn:oid:0.40", E("under first arc 0 it must be 0 to 39")),
        (
            "urn:oid:1.02.3",
            E("arc 2 `02` has a leading zero; write `2`"),
        ),
        (
            "urn:oid:1.2.00",
            E("arc 3 `00` has a leading zero; write `0`"),
        ),
        ("urn:oid:1..2", E("arc 2 is empty")),
        ("urn:oid:1.2.", E("arc 3 is empty")),
        ("urn:oid:.1.2", E("arc 1 is empty")),
        (
            "urn:oid:1.2.x",
            E("arc 3 `x` contains `x` (U+0078) at character 1"),
        ),
        ("urn:oid:1.2.-3", E("arc 3 `-3` contains `-`")),
        ("urn:oid:1.2.+3", E("arc 3 `+3` contains `+`")),
        (
            "urn:oid:1.2 .3",
            E("arc 2 `2 ` contains ` ` (U+0020) at character 2"),
        ),
        (
            "urn:oid:2.340282366920938463463374607431768211456",
            E("is larger than 2^128-1"),
        ),
        ("urn:oid:1.2/3", E("arc 2 `2/3` contains `/`")),
        ("urn:oid", E("does not start with urn:oid:")),
    ]);
    let long = format!("urn:oid:1.2{}", ".1".repeat(256));
    check(&long, &E("the OID is 515 bytes long; at most 512"));
    let longest = format!("urn:oid:1.2{}", ".1".repeat(254));
    check(&longest, &C(&longest));
}

#[test]
fn gs1_element_strings() {
    run(&[
        ("(01)09506000134352", C("/01/09506000134352")),
        (
            "(01)09506000134352(17)270101(10)LOT7(21)S1",
            C("/01/09506000134352/10/LOT7/21/S1"),
        ),
        // Any order of AIs.
        (
            "(21)S1(10)LOT7(01)09506000134352",
            C("/01/09506000134352/10/LOT7/21/S1"),
        ),
        ("(22)V-2(01)09506000134352", C("/01/09506000134352/22/V-2")),
        // Character set 82, with `\(` for a `(` inside a value.
        (
            "(01)09506000134352(10)A/B",
            C("/01/09506000134352/10/A%2FB"),
        ),
        (
            "(01)09506000134352(10)L\\(1)",
            C("/01/09506000134352/10/L%281%29"),
        ),
        (
            "(01)09506000134352(21)!\"%&'()*+,-./:",
            E("`(` at character 28 does not open an AI"),
        ),
        (
            "(01)09506000134352(21)!\"%&'\\()*+,-./:",
            C("/01/09506000134352/21/%21%22%25%26%27%28%29%2A%2B%2C-.%2F%3A"),
        ),
        (
            "(01)09506000134352(21);<=>?_zZ9",
            C("/01/09506000134352/21/%3B%3C%3D%3E%3F_zZ9"),
        ),
        // Dates: data attributes, not identity.
        ("(01)09506000134352(17)270100", C("/01/09506000134352")),
        ("(01)09506000134352(11)240229", C("/01/09506000134352")),
        (
            "(01)09506000134352(17)270230",
            E("has day 30, but month 02 has 28 days"),
        ),
        (
            "(01)09506000134352(17)251301",
            E("has month 13; months are 01 to 12"),
        ),
        (
            "(01)09506000134352(17)2701",
            E("AI (17) expiration date `2701` is not 6 digits"),
        ),
        ("(01)09506000134352(15)270431", E("month 04 has 30 days")),
        // GTIN rules.
        (
            "(01)09506000134353",
            E("GTIN 09506000134353: check digit is 3, expected 2"),
        ),
        (
            "(01)9506000134352",
            E(concat!(
                "has 13 digits; AI (01) takes 14 digits, ",
                "so write this GTIN-13 zero-padded: 09506000134352"
            )),
        ),
        ("(01)614141000036", E("GTIN-12 zero-padded: 00614141000036")),
        ("(01)95012346", E("GTIN-8 zero-padded: 00000095012346")),
        ("(01)0950600013435", E("has 13 digits")),
        (
            "(01)095060001343520",
            E("has 15 digits; AI (01) takes exactly 14"),
        ),
        (
            "(01)0950600013435X",
            E("contains `X` (U+0058) at character 14; a GTIN is 14 digits"),
        ),
        ("(01)", E("AI (01) GTIN is empty")),
        // Structure.
        ("(10)LOT7", E("there is no AI (01) GTIN")),
        (
            "(01)09506000134352(01)09506000134352",
            E("AI (01) GTIN appears twice"),
        ),
        (
            "(01)09506000134352(10)A(10)B",
            E("AI (10) batch/lot appears twice"),
        ),
        (
            "(01)09506000134352(17)270101(17)270102",
            E("AI (17) expiration date appears twice"),
        ),
        (
            "(01)09506000134352(10)",
            E("AI (10) batch/lot is empty; it takes 1 to 20 characters"),
        ),
        (
            "(01)09506000134352(10)LOT 7",
            E("contains ` ` (U+0020) at character 4, which is not in GS1 character set 82"),
        ),
        ("(01)09506000134352(10)LOT#7", E("`#` (U+0023)")),
        ("(01)09506000134352(10)LOTé", E("`é` (U+00E9)")),
        (
            "(01)09506000134352(10)ABCDEFGHIJKLMNOPQRSTU",
            E("has 21 characters; at most 20"),
        ),
        (
            "(01)09506000134352(10)ABCDEFGHIJKLMNOPQRST",
            C("/01/09506000134352/10/ABCDEFGHIJKLMNOPQRST"),
        ),
        (
            "(01)09506000134352(10)A\\B",
            E("`\\` at character 24 in the value of AI (10)"),
        ),
        (
            "(01)09506000134352(414)9506000134352",
            E("AI (414) is not accepted in an identifier"),
        ),
        ("(00)106141411234567897", E("AI (00) is not accepted")),
        (
            "(1)x",
            E("`(` at character 1 does not open an AI (2 to 4 digits"),
        ),
        ("(12345)x", E("does not open an AI")),
        ("(01", E("does not open an AI")),
        ("(ab)x", E("does not open an AI")),
        ("(01)09506000134352 ", E("whitespace at its end")),
    ]);
}

#[test]
fn gs1_digital_link_paths() {
    run(&[
        ("/01/09506000134352", C("/01/09506000134352")),
        (
            "/01/09506000134352/10/LOT7/21/S1",
            C("/01/09506000134352/10/LOT7/21/S1"),
        ),
        (
            "/01/09506000134352/22/V1/10/LOT7/21/S1",
            C("/01/09506000134352/22/V1/10/LOT7/21/S1"),
        ),
        ("/01/09506000134352/21/S1", C("/01/09506000134352/21/S1")),
        // Percent-encoding: decoded, any case, written back upper-case and only where needed.
        (
            "/01/09506000134352/10/A%2FB",
            C("/01/09506000134352/10/A%2FB"),
        ),
        (
            "/01/09506000134352/10/A%2fB",
            C("/01/09506000134352/10/A%2FB"),
        ),
        (
            "/01/09506000134352/10/LOT%37",
            C("/01/09506000134352/10/LOT7"),
        ),
        ("/01/%30%39506000134352", C("/01/09506000134352")),
        (
            "/01/09506000134352/21/%21%22%25%26",
            C("/01/09506000134352/21/%21%22%25%26"),
        ),
        (
            "/01/09506000134352/10/A%2",
            E("invalid percent-encoding at character 2"),
        ),
        (
            "/01/09506000134352/10/A%G1",
            E("invalid percent-encoding at character 2"),
        ),
        (
            "/01/09506000134352/10/%",
            E("invalid percent-encoding at character 1"),
        ),
        (
            "/01/09506000134352/10/A%20B",
            E("decodes to ` ` (U+0020) at character 2"),
        ),
        (
            "/01/09506000134352/10/A%C3%A9",
            E("decodes to byte 0xC3 at character 2"),
        ),
        ("/01/09506000134352/10/A%7E", E("decodes to `~` (U+007E)")),
        (
            "/01/09506000134352/10/A(1)",
            E("has `(` at character 2; in a Digital Link path it is percent-encoded: %28"),
        ),
        (
            "/01/09506000134352/10/A~",
            E("`~` (U+007E) at character 2, which is not in GS1 character set 82"),
        ),
        ("/01/09506000134352/10/Aé", E("`é` (U+00E9) at character 2")),
        // Data attributes go in the query.
        (
            "/01/09506000134352/10/LOT7?17=270101",
            C("/01/09506000134352/10/LOT7"),
        ),
        (
            "/01/09506000134352?17=270101&11=240101",
            C("/01/09506000134352"),
        ),
        (
            "/01/09506000134352/17/270101",
            E(concat!(
                "AI (17) expiration date is a data attribute: ",
                "a Digital Link carries it in the query (?17=…)"
            )),
        ),
        ("/01/09506000134352?17=271301", E("has month 13")),
        (
            "/01/09506000134352?17=270101&17=270102",
            E("AI (17) expiration date appears twice"),
        ),
        (
            "/01/09506000134352?10=LOT7",
            E("AI (10) batch/lot belongs in the Digital Link path (/10/…)"),
        ),
        (
            "/01/09506000134352?linkType=gs1:pip",
            E("query parameter `linkType=gs1:pip` is not part of an identifier; remove it"),
        ),
        ("/01/09506000134352?", E("the query after `?` is empty")),
        (
            "/01/09506000134352#x",
            E("a fragment (`#…`) is not part of an identifier"),
        ),
        // Order and structure.
        (
            "/01/09506000134352/21/S1/10/LOT7",
            E(concat!(
                "out of order; a Digital Link path is /01/{gtin}/22/{cpv}/10/{lot}/21/{serial}, ",
                "write /01/09506000134352/10/LOT7/21/S1"
            )),
        ),
        ("/01/09506000134352/10/LOT7/22/V1", E("out of order")),
        (
            "/01/09506000134352/10/A/10/B",
            E("AI (10) batch/lot appears twice"),
        ),
        (
            "/01/09506000134352/01/09506000134352",
            E("AI (01) GTIN appears twice"),
        ),
        ("/01/09506000134352/", E("empty segment")),
        ("/01/09506000134352//10/A", E("empty segment")),
        ("/01/09506000134352/10", E("/10/ has no value after it")),
        ("/01/09506000134352/10/", E("AI (10) batch/lot is empty")),
        (
            "/01/09506000134353",
            E("GTIN 09506000134353: check digit is 3, expected 2"),
        ),
        ("/01/9506000134352", E("zero-padded: 09506000134352")),
        ("/01/", E("AI (01) GTIN is empty")),
        ("/01", E("/01/ has no value after it")),
        (
            "/414/9506000134352",
            E("the primary key AI (414) is not accepted"),
        ),
        (
            "/00/106141411234567897",
            E("the primary key AI (00) is not accepted"),
        ),
        ("/gtin/09506000134352", E("the handle prefix is empty")),
        (
            "/01/09506000134352/lot/LOT7",
            E("`/lot/` is a GS1 Digital Link 1.0 short name; write the AI: /10/"),
        ),
        ("/01/09506000134352/99/x", E("AI (99) is not accepted")),
    ]);
}

#[test]
fn gs1_digital_link_uris() {
    run(&[
        (
            "https://id.gs1.org/01/09506000134352",
            C("/01/09506000134352"),
        ),
        (
            "https://id.gs1.org/01/09506000134352/10/LOT7/21/S1?17=270101",
            C("/01/09506000134352/10/LOT7/21/S1"),
        ),
        (
            "HTTPS://example.com/01/09506000134352",
            C("/01/09506000134352"),
        ),
        (
            "http://example.com:8080/01/09506000134352",
            C("/01/09506000134352"),
        ),
        // A path of the resolver's own before the key.
        (
            "https://example.com/products/dl/01/09506000134352/21/S1",
            C("/01/09506000134352/21/S1"),
        ),
        (
            "https://example.com/products/01/09506000134352/21/01",
            C("/01/09506000134352/21/01"),
        ),
        ("https:///01/09506000134352", E("has no host")),
        ("https://a b/01/09506000134352", E("contains ` ` (U+0020)")),
        (
            "https://h/x\ty/01/09506000134352",
            E("contains `\\t` (U+0009)"),
        ),
        (
            "https://h/01/09506000134352/10/A B",
            E("`A B` has ` ` (U+0020) at character 2"),
        ),
        ("https://example.com", E("has no path")),
        ("https://example.com?17=270101", E("has no path")),
        (
            "https://example.com/",
            E("a Digital Link path starts with the primary key /01/{gtin}"),
        ),
        (
            "https://example.com/products",
            E("starts with the primary key /01/{gtin}"),
        ),
        (
            "https://id.gs1.org/414/9506000134352",
            E("the primary key AI (414) is not accepted"),
        ),
        (
            "https://id.gs1.org/gtin/09506000134352",
            E("`/gtin/` is a GS1 Digital Link 1.0 short name; write the AI: /01/"),
        ),
        (
            "https://id.gs1.org/01/09506000134353",
            E("check digit is 3, expected 2"),
        ),
        ("https://id.gs1.org/01/09506000134352#frag", E("a fragment")),
        ("https:09506000134352", E("is neither an element string")),
    ]);
}

#[test]
fn element_string_and_digital_link_are_the_same_key() {
    let pairs = [
        (
            "(01)09506000134352(17)270101(10)LOT7(21)S1",
            "/01/09506000134352/10/LOT7/21/S1",
        ),
        (
            "(21)S1(01)09506000134352(10)LOT7",
            "/01/09506000134352/10/LOT7/21/S1",
        ),
        ("(01)09506000134352(10)A/B", "/01/09506000134352/10/A%2fB"),
        (
            "(01)09506000134352(22)2A(10)L\\(1",
            "/01/09506000134352/22/2A/10/L%281",
        ),
        (
            "(01)09506000134352",
            "https://id.gs1.org/01/09506000134352?17=270101",
        ),
    ];
    for (element, link) in pairs {
        let a = Identifier::parse(element).unwrap();
        let b = Identifier::parse(link).unwrap();
        assert_eq!(a, b, "{element} and {link}");
        assert_eq!(a.canonical(), b.canonical());
        let (Identifier::Gs1(a), Identifier::Gs1(b)) = (&a, &b) else {
            panic!("not GS1: {a:?}");
        };
        assert_eq!(a.element_string(), b.element_string());
        assert_eq!(
            Identifier::parse(&a.element_string()).unwrap(),
            Identifier::Gs1(b.clone())
        );
    }
}

#[test]
fn gs1_key_parts_and_attributes() {
    let key = Gs1Key::parse("(17)270101(21)S1(10)LOT7(01)09506000134352(11)240101").unwrap();
    assert_eq!(key.gtin(), "09506000134352");
    assert_eq!(key.cpv(), None);
    assert_eq!(key.lot(), Some("LOT7"));
    assert_eq!(key.serial(), Some("S1"));
    assert_eq!(
        key.attributes(),
        [
            ("11".to_owned(), "240101".to_owned()),
            ("17".to_owned(), "270101".to_owned())
        ]
    );
    assert_eq!(key.element_string(), "(01)09506000134352(10)LOT7(21)S1");
    assert_eq!(key.digital_link_path(), "/01/09506000134352/10/LOT7/21/S1");
    // Attributes are not identity.
    let bare = Gs1Key::new("09506000134352", None, Some("LOT7"), Some("S1")).unwrap();
    assert!(bare.attributes().is_empty());
    assert_eq!(key, bare);
    assert_eq!(key.cmp(&bare), std::cmp::Ordering::Equal);
    let mut set = std::collections::HashSet::new();
    set.insert(key);
    assert!(set.contains(&bare));

    let with_cpv = Gs1Key::new("09506000134352", Some("V"), None, None).unwrap();
    assert_eq!(with_cpv.to_string(), "/01/09506000134352/22/V");
    assert_eq!(
        Gs1Key::new("09506000134353", None, None, None),
        Err(IdError::BadCheckDigit {
            gtin: "09506000134353".into(),
            expected: 2
        })
    );
    assert!(Gs1Key::new("09506000134352", None, Some(""), None).is_err());
    assert!(Gs1Key::new("09506000134352", None, None, Some("a b")).is_err());
}

#[test]
fn check_digit_error_names_the_expected_digit() {
    // 09506000134352 is GS1's own example GTIN: valid. Every other last digit is wrong,
    // and the error says which digit is right.
    assert!(Identifier::parse("(01)09506000134352").is_ok());
    for wrong in (0..10).filter(|&d| d != 2) {
        let gtin = format!("0950600013435{wrong}");
        let error = Identifier::parse(&format!("/01/{gtin}")).unwrap_err();
        assert_eq!(
            error,
            IdError::BadCheckDigit {
                gtin: gtin.clone(),
                expected: 2
            }
        );
        assert_eq!(
            error.to_string(),
            format!("GTIN {gtin}: check digit is {wrong}, expected 2")
        );
    }
    // Other real GTINs: a GTIN-12 and a GTIN-14 with indicator digit 1.
    for valid in [
        "00614141000036",
        "10614141000033",
        "00000095012346",
        "04006381333931",
    ] {
        assert!(
            Identifier::parse(&format!("/01/{valid}")).is_ok(),
            "{valid}"
        );
    }
}

#[test]
fn prefixes() {
    let prefix = Prefix::parse("86.1000.23").unwrap();
    assert_eq!(prefix.as_str(), "86.1000.23");
    assert_eq!(prefix.segments().collect::<Vec<_>>(), ["86", "1000", "23"]);
    assert_eq!(prefix.segments().next_back(), Some("23"));
    assert_eq!(prefix.parent(), Some(Prefix::parse("86.1000").unwrap()));
    assert_eq!(Prefix::parse("86").unwrap().parent(), None);
    let root = Prefix::parse("86").unwrap();
    assert!(root.is_ancestor_of(&prefix));
    assert!(Prefix::parse("86.1000").unwrap().is_ancestor_of(&prefix));
    assert!(!prefix.is_ancestor_of(&prefix));
    assert!(!prefix.is_ancestor_of(&root));
    assert!(!Prefix::parse("86.10").unwrap().is_ancestor_of(&prefix));
    assert!(!Prefix::parse("8").unwrap().is_ancestor_of(&prefix));
    // Case-insensitive, written lower-case.
    assert_eq!(
        Prefix::parse("86.ABC").unwrap(),
        Prefix::parse("86.abc").unwrap()
    );
    assert_eq!(Prefix::parse("86.ABC").unwrap().to_string(), "86.abc");
    assert_eq!(
        "20.500.12345".parse::<Prefix>().unwrap().to_string(),
        "20.500.12345"
    );
    assert_eq!(Prefix::parse(""), Err(IdError::EmptyPrefix));
    let error = Prefix::parse("86.1000/23").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("segment 2 `1000/23` contains `/`"),
        "{error}"
    );
}

#[test]
fn handle_parts() {
    let handle = Handle::parse("86.1000.23/PKG-0001").unwrap();
    assert_eq!(handle.prefix().as_str(), "86.1000.23");
    assert_eq!(handle.suffix(), "PKG-0001");
    let built = Handle::new(Prefix::parse("86.1000.23").unwrap(), "PKG-0001").unwrap();
    assert_eq!(built, handle);
    assert!(Handle::new(Prefix::parse("86").unwrap(), "").is_err());
    // Suffixes are case-sensitive.
    assert_ne!(
        Handle::parse("86/a").unwrap(),
        Handle::parse("86/A").unwrap()
    );
    assert_eq!(Identifier::from(handle.clone()), Identifier::Handle(handle));
}

#[test]
fn oid_parts() {
    let oid = Oid::parse("urn:oid:1.2.156.112604.1").unwrap();
    assert_eq!(oid.arcs(), [1, 2, 156, 112604, 1]);
    assert_eq!(oid.dotted(), "1.2.156.112604.1");
    assert_eq!(oid.parent().unwrap().to_string(), "urn:oid:1.2.156.112604");
    assert_eq!(Oid::parse("urn:oid:1.2").unwrap().parent(), None);
    assert_eq!(
        Oid::parse_dotted("1.2.156").unwrap(),
        Oid::from_arcs(vec![1, 2, 156]).unwrap()
    );
    assert!(Oid::from_arcs(vec![1]).is_err());
    assert!(Oid::from_arcs(vec![]).is_err());
    assert!(Oid::from_arcs(vec![3, 1]).is_err());
    assert!(Oid::from_arcs(vec![1, 40]).is_err());
    assert!(Oid::from_arcs(vec![2, 40]).is_ok());
    // Arcs compare as numbers.
    assert!(Oid::parse_dotted("1.2.9").unwrap() < Oid::parse_dotted("1.2.10").unwrap());
}

#[test]
fn namespaces_and_their_keys() {
    let cases: [(&str, &str, &[&str]); 6] = [
        (
            "86.1000.23/PKG-0001",
            "hdl:86.1000.23",
            &["hdl:86.1000.23", "hdl:86.1000", "hdl:86"],
        ),
        ("86.ABC/x", "hdl:86.abc", &["hdl:86.abc", "hdl:86"]),
        (
            "urn:oid:1.2.156.112604.1",
            "oid:1.2.156.112604",
            &["oid:1.2.156.112604", "oid:1.2.156", "oid:1.2", "oid:1"],
        ),
        ("urn:oid:2.999", "oid:2", &["oid:2"]),
        (
            "/01/09506000134352/10/LOT7",
            "gs1:950600013435",
            &[
                "gs1:950600013435",
                "gs1:95060001343",
                "gs1:9506000134",
                "gs1:950600013",
                "gs1:95060001",
                "gs1:9506000",
                "gs1:950600",
            ],
        ),
        (
            "(01)10614141000033",
            "gs1:061414100003",
            &[
                "gs1:061414100003",
                "gs1:06141410000",
                "gs1:0614141000",
                "gs1:061414100",
                "gs1:06141410",
                "gs1:0614141",
                "gs1:061414",
            ],
        ),
    ];
    for (input, key, ancestors) in cases {
        let namespace = Identifier::parse(input).unwrap().namespace();
        assert_eq!(namespace.namespace_key(), key, "{input}");
        assert_eq!(namespace.to_string(), key);
        assert_eq!(namespace.ancestors_keys(), ancestors, "{input}");
        assert_eq!(Namespace::from_key(key).unwrap(), namespace, "{key}");
        for ancestor in ancestors {
            let parsed = Namespace::from_key(ancestor).unwrap();
            assert_eq!(parsed.namespace_key(), *ancestor);
        }
    }
    // A manufacturer's GS1 Company Prefix covers its GTINs, and its key is among their
    // ancestors.
    let gcp = Namespace::gs1_company_prefix("0614141").unwrap();
    assert_eq!(gcp.namespace_key(), "gs1:0614141");
    let gtin_namespace = Identifier::parse("/01/00614141000036").unwrap().namespace();
    assert!(
        gtin_namespace
            .ancestors_keys()
            .contains(&gcp.namespace_key())
    );
    assert!(Namespace::gs1_company_prefix("06141").is_err());
    assert!(Namespace::gs1_company_prefix("0614141000036").is_err());
    assert!(Namespace::gs1_company_prefix("06141a1").is_err());
}

#[test]
fn namespace_key_errors() {
    for (key, part) in [
        ("86.1000", "has no `hdl:`, `oid:` or `gs1:` in front"),
        ("dns:x", "`dns:` is not a namespace kind"),
        ("hdl:", "the handle prefix is empty"),
        ("hdl:86..1", "segment 2 `` is empty"),
        ("oid:", "there are no arcs"),
        ("oid:3", "the first arc is 3"),
        ("oid:1.40", "the second arc is 40"),
        ("oid:1.02", "leading zero"),
        ("gs1:12345", "has 5 digits; it has 6 to 12"),
        ("gs1:1234567890123", "has 13 digits"),
        ("gs1:12345x", "contains `x` (U+0078) at character 6"),
    ] {
        let error = Namespace::from_key(key).unwrap_err();
        assert!(error.to_string().contains(part), "{key}: {error}");
    }
}

#[test]
fn company_prefix_matching() {
    assert!(gs1_company_prefix_matches("950600", "09506000134352"));
    assert!(gs1_company_prefix_matches("950600013435", "09506000134352"));
    assert!(gs1_company_prefix_matches("0614141", "10614141000033"));
    // The indicator digit is not part of a company prefix.
    assert!(!gs1_company_prefix_matches("095060", "09506000134352"));
    assert!(!gs1_company_prefix_matches("950601", "09506000134352"));
    assert!(!gs1_company_prefix_matches("95060", "09506000134352")); // too short
    assert!(!gs1_company_prefix_matches(
        "9506000134352",
        "09506000134352"
    )); // too long
    assert!(!gs1_company_prefix_matches("950600", "9506000134352")); // not 14 digits
    assert!(!gs1_company_prefix_matches("950600", "0950600013435x"));
    assert!(!gs1_company_prefix_matches("95060é", "0950600013435é"));
}

#[test]
fn serde_uses_the_canonical_string() {
    let id = Identifier::parse("(01)09506000134352(10)LOT7").unwrap();
    assert_eq!(
        serde_json::to_string(&id).unwrap(),
        r#""/01/09506000134352/10/LOT7""#
    );
    let back: Identifier = serde_json::from_str(r#""/01/09506000134352/10/LOT7""#).unwrap();
    assert_eq!(back, id);
    let handle: Identifier = serde_json::from_str(r#""86.ABC/x""#).unwrap();
    assert_eq!(serde_json::to_string(&handle).unwrap(), r#""86.abc/x""#);
    let error = serde_json::from_str::<Identifier>(r#""/01/09506000134353""#).unwrap_err();
    assert!(
        error.to_string().contains("check digit is 3, expected 2"),
        "{error}"
    );
    assert!(serde_json::from_str::<Identifier>("12").is_err());

    let prefix: Prefix = serde_json::from_str(r#""86.1000.23""#).unwrap();
    assert_eq!(serde_json::to_string(&prefix).unwrap(), r#""86.1000.23""#);
    let error = serde_json::from_str::<Prefix>(r#""86..1""#).unwrap_err();
    assert!(
        error.to_string().contains("segment 2 `` is empty"),
        "{error}"
    );
}

#[test]
fn identifiers_order_and_compare() {
    let mut ids: Vec<Identifier> = [
        "urn:oid:1.2.10",
        "/01/09506000134352",
        "86/b",
        "urn:oid:1.2.9",
        "86/a",
    ]
    .iter()
    .map(|s| s.parse().unwrap())
    .collect();
    ids.sort();
    let sorted: Vec<String> = ids.iter().map(Identifier::canonical).collect();
    assert_eq!(
        sorted,
        [
            "86/a",
            "86/b",
            "urn:oid:1.2.9",
            "urn:oid:1.2.10",
            "/01/09506000134352"
        ]
    );
}

/// A small xorshift generator, so the garbage is the same on every run.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pieces garbage is made of: the syntaxes' own punctuation and keywords, and the
/// characters most likely to trip a parser.
const PIECES: &[&str] = &[
    "0",
    "1",
    "2",
    "9",
    "39",
    "40",
    "00",
    ".",
    "..",
    "/",
    "//",
    "(",
    ")",
    "\\",
    "\\(",
    "%",
    "%2",
    "%2F",
    "%zz",
    "%C3%A9",
    "?",
    "&",
    "=",
    "#",
    ":",
    "-",
    "_",
    "~",
    " ",
    "\t",
    "\n",
    "é",
    "中",
    "\u{0}",
    "\u{7f}",
    "\u{202e}",
    "😀",
    "a",
    "Z",
    "urn:oid:",
    "URN:oid:",
    "https://",
    "http://h",
    "hdl:",
    "did:",
    "(01)",
    "(10)",
    "(21)",
    "(22)",
    "(17)",
    "(414)",
    "/01/",
    "/10/",
    "/21/",
    "/22/",
    "/17/",
    "01",
    "09506000134352",
    "09506000134353",
    "9506000134352",
    "270101",
    "?17=",
    "86.1000.23",
    "/PKG",
    "340282366920938463463374607431768211456",
    "gtin",
    "lot",
];

/// Real identifiers to mutate.
const SEEDS: &[&str] = &[
    "86.1000.23/PKG-0001",
    "urn:oid:1.2.156.112604.1",
    "(01)09506000134352(17)270101(10)LOT7(21)S1",
    "/01/09506000134352/22/V/10/LOT7/21/S1?17=270101",
    "https://id.gs1.org/01/09506000134352/10/A%2FB",
];

/// Parses `input` every way there is; none may panic, and whatever parses must
/// re-parse from its canonical form to an equal value.
fn parse_everything(input: &str) {
    if let Ok(id) = Identifier::parse(input) {
        assert_round_trip(&id);
    }
    if let Ok(key) = Gs1Key::parse(input) {
        assert_eq!(Gs1Key::parse(&key.to_string()).unwrap(), key, "{input:?}");
        assert_eq!(
            Gs1Key::parse(&key.element_string()).unwrap(),
            key,
            "{input:?}"
        );
    }
    if let Ok(prefix) = Prefix::parse(input) {
        assert_eq!(Prefix::parse(prefix.as_str()).unwrap(), prefix);
        let _ = Namespace::Handle(prefix).ancestors_keys();
    }
    if let Ok(handle) = Handle::parse(input) {
        assert_eq!(Handle::parse(&handle.to_string()).unwrap(), handle);
    }
    if let Ok(oid) = Oid::parse(input) {
        assert_eq!(Oid::parse(&oid.to_string()).unwrap(), oid);
    }
    let _ = Oid::parse_dotted(input);
    if let Ok(namespace) = Namespace::from_key(input) {
        assert_eq!(
            Namespace::from_key(&namespace.namespace_key()).unwrap(),
            namespace
        );
        let _ = namespace.ancestors_keys();
    }
    let _ = gs1_company_prefix_matches(input, input);
    let _ = Namespace::Gs1Gtin(input.to_owned()).ancestors_keys();
}

#[test]
fn garbage_never_panics() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for _ in 0..4000 {
        let mut input = String::new();
        for _ in 0..rng.below(12) {
            input.push_str(PIECES[rng.below(PIECES.len())]);
        }
        parse_everything(&input);
    }
    // Random bytes, kept where they are UTF-8 (lossily otherwise).
    for _ in 0..2000 {
        let bytes: Vec<u8> = (0..rng.below(40)).map(|_| rng.next() as u8).collect();
        parse_everything(&String::from_utf8_lossy(&bytes));
        let ascii: String = bytes.iter().map(|b| char::from(b % 128)).collect();
        parse_everything(&ascii);
    }
    // Real identifiers with a few characters changed, inserted or removed.
    for _ in 0..4000 {
        let mut chars: Vec<char> = SEEDS[rng.below(SEEDS.len())].chars().collect();
        for _ in 0..=rng.below(3) {
            let at = rng.below(chars.len() + 1);
            let piece: Vec<char> = PIECES[rng.below(PIECES.len())].chars().collect();
            match rng.below(3) {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 if at < chars.len() => {
                    chars.splice(at..=at, piece);
                }
                _ => {
                    chars.splice(at..at, piece);
                }
            }
        }
        parse_everything(&chars.into_iter().collect::<String>());
    }
}
