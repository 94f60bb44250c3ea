//! Reading what a visitor submits, and the rules each field must meet.
//!
//! Forms (urlencoded) and JSON bodies are both read into [`Fields`], so a
//! field breaks the same rule, with the same words, on a page and in the
//! API. A rule broken is a 422 that names every bad field at once.

use std::collections::HashMap;

use checkout::api::PlaceOrder;
use payment::api::CreditCardInfo;
use shipping::api::Address;

use crate::error::{FieldError, ShopError};

/// The submitted fields, by name. A form that sends one field twice is
/// refused: which of two quantities or card numbers was meant is not for
/// the shop to guess.
#[derive(Debug, Default)]
pub struct Fields(HashMap<String, String>);

/// The middleware of the HTML pages' form posts: a body sent as
/// `multipart/form-data` (`curl -F`) is answered 415, saying how to send
/// it. Read as the URL-encoded form it is not, it was a 422 listing every
/// field as missing.
pub async fn refuse_multipart(
    request: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let multipart = request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim_start().get(..10))
        .is_some_and(|start| start.eq_ignore_ascii_case("multipart/"));
    if multipart {
        return Ok(request.error_response(ShopError::UnsupportedBody(
            "send the form as application/x-www-form-urlencoded, as a browser's form does \
             (with curl: -d name=value, not -F)"
                .to_owned(),
        )));
    }
    Ok(next.call(request).await?.map_into_boxed_body())
}

impl Fields {
    /// Reads an `application/x-www-form-urlencoded` body.
    pub fn from_form(body: &[u8]) -> Result<Fields, ShopError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|e| ShopError::BadRequest(format!("the form could not be read: {e}")))?;
        let mut fields = HashMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            if fields.contains_key(&name) {
                // Quoted with escapes: the name is the sender's, and goes
                // into a log line.
                let shown = first_chars(&name);
                return Err(ShopError::BadRequest(format!(
                    "the form sends the field {shown:?} more than once; send it once"
                )));
            }
            fields.insert(name, value);
        }
        Ok(Fields(fields))
    }

    /// Reads a JSON object body whose values are strings, numbers or
    /// booleans.
    pub fn from_json(body: &[u8]) -> Result<Fields, ShopError> {
        let JsonMembers(object) = serde_json::from_slice(body)
            .map_err(|e| ShopError::BadRequest(format!("the body is not a JSON object: {e}")))?;
        let mut fields = HashMap::new();
        // Every name given, a `null` one too (it is not kept as a field).
        let mut given = std::collections::HashSet::new();
        for (name, value) in object {
            if !given.insert(name.clone()) {
                // As for a form: which of the two was meant is not for the
                // shop to guess (a JSON parser keeps the last, silently).
                let shown = first_chars(&name);
                return Err(ShopError::BadRequest(format!(
                    "the body gives the field {shown:?} more than once; give it once"
                )));
            }
            let text = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => continue,
                _ => {
                    // The client's name for it, clipped and without control
                    // characters: it goes into the answer and the log line.
                    let shown = first_chars(&name).replace(char::is_control, "?");
                    return Err(ShopError::field(&shown, "must be a string or a number"));
                }
            };
            fields.insert(name, text);
        }
        Ok(Fields(fields))
    }

    /// The field, trimmed; empty if absent.
    pub fn text(&self, name: &str) -> &str {
        self.0.get(name).map_or("", |v| v.trim())
    }

    /// The field exactly as sent (passwords are not trimmed).
    pub fn raw(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }
}

/// The first characters of a field's name as the client sent it, for an
/// error that names it (and the log line that says it).
fn first_chars(name: &str) -> String {
    name.chars().take(64).collect()
}

/// A JSON object's members in order, repeated names kept (a map would
/// keep only the last of them).
struct JsonMembers(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for JsonMembers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = JsonMembers;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<JsonMembers, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(JsonMembers(members))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// Collects the fields that break rules.
#[derive(Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, field: &str, reason: impl Into<String>) {
        self.0.push(FieldError::new(field, reason));
    }

    /// A required text field of at most `max` characters, none a control
    /// character (which checkout refuses too, but one field at a time).
    fn required(&mut self, fields: &Fields, name: &str, max: usize) -> String {
        let value = fields.text(name);
        if value.is_empty() {
            self.add(name, "is required");
        } else if value.chars().count() > max {
            self.add(name, format!("must be at most {max} characters"));
        } else if value.chars().any(char::is_control) {
            self.add(name, "must not contain control characters");
        }
        value.to_owned()
    }

    /// A required integer field within `range`.
    fn integer(
        &mut self,
        fields: &Fields,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
        rule: &str,
    ) -> i32 {
        let text = fields.text(name);
        if text.is_empty() {
            self.add(name, "is required");
            return 0;
        }
        // Digits, with a minus at most: Rust's parser also takes `+5`,
        // which no form sends and no rule names.
        let digits = text.strip_prefix('-').unwrap_or(text);
        let plain = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
        match text.parse::<i64>() {
            Ok(n) if plain && range.contains(&n) => i32::try_from(n).unwrap_or_default(),
            _ => {
                self.add(name, rule);
                0
            }
        }
    }

    fn finish(self) -> Result<(), ShopError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ShopError::InvalidFields(self.0))
        }
    }
}

/// `POST /cart`: which product, how many.
pub struct AddToCart {
    pub product_id: String,
    pub quantity: i32,
}

/// The original's rules: a product id, and a quantity from 1 to 10.
pub fn add_to_cart(fields: &Fields) -> Result<AddToCart, ShopError> {
    let mut problems = Problems::default();
    let product_id = fields.text("product_id").to_owned();
    if product_id.is_empty() {
        problems.add("product_id", "is required");
    } else if product_id.len() > 64 {
        problems.add("product_id", "must be at most 64 characters");
    }
    let quantity = problems.integer(
        fields,
        "quantity",
        1..=10,
        "must be a whole number from 1 to 10",
    );
    problems.finish()?;
    Ok(AddToCart {
        product_id,
        quantity,
    })
}

/// True for something that looks like an email address (the email
/// module's rule, [`email::api::is_address`]).
pub fn is_email(email: &str) -> bool {
    email::api::is_address(email)
}

/// The card number's digits if it is written as digits, optionally in
/// groups of at least 3 separated by single spaces or dashes (spec 2.10:
/// `4 432 ...` is no way to write a card); 12 to 19 digits passing
/// the Luhn check. Whether the shop accepts the card (VISA or MasterCard,
/// 16 digits, not expired) is payment's decision, and a refusal there is a
/// declined card, not a bad form.
fn card_number(number: &str) -> Result<String, &'static str> {
    let well_formed = !number.is_empty()
        && number
            .split([' ', '-'])
            .all(|group| group.len() >= 3 && group.bytes().all(|b| b.is_ascii_digit()));
    if !well_formed {
        return Err(
            "must be the card's digits (spaces or dashes between groups of 3 or more are fine)",
        );
    }
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    if !(12..=19).contains(&digits.len()) {
        return Err("must have 12 to 19 digits");
    }
    if !payment::api::passes_luhn(&digits) {
        return Err("is not a valid card number (check the digits)");
    }
    Ok(digits)
}

/// A checkout form's idempotency key as a client may send it: at most
/// 128 letters, digits, `-` or `_` (empty: a fresh one is made).
/// Checkout's own rule, so the form and the service never disagree.
pub fn is_checkout_key(key: &str) -> bool {
    checkout::api::is_idempotency_key(key)
}

/// `POST /cart/checkout`: every field checked, every problem reported.
/// The result still needs the customer and currency filled in.
pub fn checkout(fields: &Fields) -> Result<PlaceOrder, ShopError> {
    let mut problems = Problems::default();
    let email = fields.text("email").to_owned();
    if email.is_empty() {
        problems.add("email", "is required");
    } else if !is_email(&email) {
        problems.add(
            "email",
            "must be an email address, like someone@example.com",
        );
    }
    let street_address = problems.required(fields, "street_address", 512);
    let zip_code = problems.integer(
        fields,
        "zip_code",
        1..=i64::from(i32::MAX),
        "must be a positive number, like 94043",
    );
    let city = problems.required(fields, "city", 128);
    let state = problems.required(fields, "state", 128);
    let country = problems.required(fields, "country", 128);
    let number = fields.text("credit_card_number");
    let credit_card_number = match card_number(number) {
        Err(_) if number.is_empty() => {
            problems.add("credit_card_number", "is required");
            String::new()
        }
        Ok(digits) => digits,
        Err(rule) => {
            problems.add("credit_card_number", rule);
            String::new()
        }
    };
    let month = problems.integer(
        fields,
        "credit_card_expiration_month",
        1..=12,
        "must be a month from 1 to 12",
    );
    let year = problems.integer(
        fields,
        "credit_card_expiration_year",
        2000..=9999,
        "must be a four-digit year",
    );
    let cvv_text = fields.text("credit_card_cvv");
    let cvv = Some(cvv_text)
        .filter(|text| (3..=4).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|text| text.parse::<i32>().ok());
    let cvv = cvv.unwrap_or_else(|| {
        let rule = if cvv_text.is_empty() {
            "is required"
        } else {
            "must be the 3 or 4 digits on the back of the card, as text (in JSON, \"042\", \
             not 42: a number loses a leading zero)"
        };
        problems.add("credit_card_cvv", rule);
        0
    });
    let idempotency_key = fields.text("idempotency_key").to_owned();
    if !is_checkout_key(&idempotency_key) {
        problems.add(
            "idempotency_key",
            "must be at most 128 letters, digits, - or _",
        );
    }
    let expected = fields.text("expected_total");
    let expected_total = match expected {
        "" => None,
        text => {
            let parsed = parse_amount(text);
            if parsed.is_none() {
                problems.add(
                    "expected_total",
                    "must be a currency code and an amount, like \"USD 28.99\"",
                );
            }
            parsed
        }
    };
    problems.finish()?;
    Ok(PlaceOrder {
        user_id: String::new(),
        user_currency: String::new(),
        address: Address {
            street_address,
            city,
            state,
            country,
            zip_code,
        },
        email,
        credit_card: CreditCardInfo {
            credit_card_number,
            credit_card_cvv: cvv,
            credit_card_expiration_year: year,
            credit_card_expiration_month: month,
        },
        idempotency_key,
        expected_total,
    })
}

/// An amount as a form's `expected_total` holds it: the currency code, a
/// space, and the amount exactly, `USD 28.990000000` (see
/// [`parse_amount`]).
pub fn amount_text(amount: &currency::api::Money) -> String {
    let total = amount.total_nanos();
    let sign = if total < 0 { "-" } else { "" };
    let nanos = total.unsigned_abs();
    let per_unit = 1_000_000_000_u128;
    format!(
        "{} {sign}{}.{:09}",
        amount.currency_code,
        nanos / per_unit,
        nanos % per_unit
    )
}

/// An amount written as a currency code, a space, and a decimal number
/// of at most nine places: `USD 28.99`, `EUR 17`, `JPY 2235.060000000`.
pub fn parse_amount(text: &str) -> Option<currency::api::Money> {
    let (code, number) = text.trim().split_once(' ')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) if digits(fraction) && fraction.len() <= 9 => (whole, fraction),
        Some(_) => return None,
        None => (number, ""),
    };
    if !digits(whole) {
        return None;
    }
    let units: i64 = whole.parse().ok()?;
    let nanos: i32 = format!("{fraction:0<9}").parse().ok()?;
    let amount = currency::api::Money::new(code, units, nanos);
    amount.validate().ok().map(|()| amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> Fields {
        Fields::from_form(body.as_bytes()).unwrap()
    }

    const GOOD: &str = "email=someone%40example.com&street_address=1600+Amphitheatre+Parkway&zip_code=94043\
        &city=Mountain+View&state=CA&country=United+States&credit_card_number=4432801561520454\
        &credit_card_expiration_month=1&credit_card_expiration_year=2099&credit_card_cvv=672";

    fn bad_fields(result: Result<PlaceOrder, ShopError>) -> Vec<String> {
        match result {
            Err(ShopError::InvalidFields(fields)) => fields.into_iter().map(|f| f.field).collect(),
            other => panic!("expected invalid fields, got {other:?}"),
        }
    }

    #[test]
    fn a_field_sent_twice_is_refused_and_named() {
        let error = Fields::from_form(b"product_id=OLJCESPC7Z&quantity=1&quantity=9").unwrap_err();
        assert!(
            matches!(&error, ShopError::BadRequest(message)
                if message.contains("\"quantity\" more than once")),
            "{error:?}"
        );
        // Two different fields are a form.
        let fields = form("product_id=OLJCESPC7Z&quantity=9");
        assert_eq!(fields.text("quantity"), "9");
    }

    #[test]
    fn a_json_member_given_twice_is_refused_and_named() {
        // A null one counts: which of the two was meant is as unclear.
        for twice in [
            &br#"{"product_id":"OLJCESPC7Z","quantity":1,"quantity":9}"#[..],
            br#"{"product_id":"OLJCESPC7Z","quantity":null,"quantity":9}"#,
            br#"{"product_id":"OLJCESPC7Z","quantity":9,"quantity":null}"#,
        ] {
            let error = Fields::from_json(twice).unwrap_err();
            assert!(
                matches!(&error, ShopError::BadRequest(message)
                    if message.contains("\"quantity\" more than once")),
                "{error:?}"
            );
        }
        let fields = Fields::from_json(br#"{"product_id":"OLJCESPC7Z","quantity":9}"#).unwrap();
        assert_eq!(fields.text("quantity"), "9");
        for not_an_object in [&b"[1, 2]"[..], b"7", b"{"] {
            let error = Fields::from_json(not_an_object).unwrap_err();
            assert!(
                matches!(&error, ShopError::BadRequest(message) if message.contains("not a JSON object")),
                "{error:?}"
            );
        }
    }

    /// A member that is neither text nor a number is named in the answer
    /// and the log line as sent, but clipped and without control
    /// characters: a name with a line break would forge a log line.
    #[test]
    fn a_bad_members_name_is_named_clipped_and_without_controls() {
        let long = "k".repeat(100);
        for (body, named) in [
            (r#"{"quantity":[1]}"#.to_owned(), "quantity".to_owned()),
            (
                "{\"a\\nINFO forged\":{}}".to_owned(),
                "a?INFO forged".to_owned(),
            ),
            (format!(r#"{{"{long}":true,"x":[]}}"#), "x".to_owned()),
            (format!(r#"{{"{long}":[]}}"#), "k".repeat(64)),
        ] {
            match Fields::from_json(body.as_bytes()) {
                Err(ShopError::InvalidFields(fields)) => {
                    assert_eq!(fields[0].field, named, "{body}");
                }
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_original_forms_defaults_pass() {
        let order = checkout(&form(GOOD)).unwrap();
        assert_eq!(order.address.zip_code, 94043);
        assert_eq!(order.credit_card.credit_card_number, "4432801561520454");
        assert_eq!(order.credit_card.credit_card_cvv, 672);
        // A code with a leading zero is a card's code too.
        let order = checkout(&form(&GOOD.replace("cvv=672", "cvv=042"))).unwrap();
        assert_eq!(order.credit_card.credit_card_cvv, 42);
    }

    #[test]
    fn card_numbers_may_be_grouped_with_spaces_or_dashes() {
        for number in ["4432+8015+6152+0454", "4432-8015-6152-0454"] {
            let body = GOOD.replace("4432801561520454", number);
            assert_eq!(
                checkout(&form(&body))
                    .unwrap()
                    .credit_card
                    .credit_card_number,
                "4432801561520454"
            );
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        let body = "email=nope&street_address=&zip_code=0&city=x&state=y&country=z\
            &credit_card_number=4432801561520455&credit_card_expiration_month=13\
            &credit_card_expiration_year=26&credit_card_cvv=12";
        assert_eq!(
            bad_fields(checkout(&form(body))),
            [
                "email",
                "street_address",
                "zip_code",
                "credit_card_number",
                "credit_card_expiration_month",
                "credit_card_expiration_year",
                "credit_card_cvv"
            ]
        );
    }

    #[test]
    fn control_characters_in_the_address_are_said_of_every_field_at_once() {
        // Checkout refuses them too, but one field at a time.
        let body = GOOD
            .replace("city=Mountain+View", "city=Mountain%09View")
            .replace("state=CA", "state=C%0BA");
        assert_eq!(bad_fields(checkout(&form(&body))), ["city", "state"]);
    }

    #[test]
    fn a_missing_field_is_said_to_be_required() {
        let Err(ShopError::InvalidFields(problems)) = checkout(&form("")) else {
            panic!("an empty form passed");
        };
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "email",
                "street_address",
                "zip_code",
                "city",
                "state",
                "country",
                "credit_card_number",
                "credit_card_expiration_month",
                "credit_card_expiration_year",
                "credit_card_cvv"
            ]
        );
        for problem in &problems {
            assert_eq!(problem.reason, "is required", "{}", problem.field);
        }
        let Err(ShopError::InvalidFields(problems)) = add_to_cart(&form("product_id=X")) else {
            panic!("no quantity passed");
        };
        assert_eq!(problems[0].field, "quantity");
        assert_eq!(problems[0].reason, "is required");
    }

    #[test]
    fn card_numbers_need_digits_in_groups_and_luhn() {
        assert!(card_number("4432--8015").is_err());
        // Groups of fewer than 3 digits (spec 2.10), though the digits are
        // a good card's.
        assert!(card_number("4 432 8015 6152 0454").is_err());
        assert!(card_number("44 32-8015-6152-0454").is_err());
        assert!(card_number("4432 8015 6152 045a").is_err());
        assert!(card_number("44328015615").is_err(), "11 digits");
        assert!(card_number("4432801561520455").is_err(), "Luhn");
        assert_eq!(
            card_number("5555 5555 5555 4444").unwrap(),
            "5555555555554444"
        );
    }

    #[test]
    fn quantities_are_whole_numbers_from_1_to_10() {
        for quantity in ["1", "10"] {
            let added =
                add_to_cart(&form(&format!("product_id=OLJCESPC7Z&quantity={quantity}"))).unwrap();
            assert_eq!(added.quantity.to_string(), quantity);
        }
        // `%2B5` is `+5` (a bare `+` in a form is a space).
        for quantity in ["0", "11", "-1", "2.5", "", "x", "%2B5", "-"] {
            let result = add_to_cart(&form(&format!("product_id=OLJCESPC7Z&quantity={quantity}")));
            assert!(
                matches!(result, Err(ShopError::InvalidFields(_))),
                "{quantity}"
            );
        }
        assert!(add_to_cart(&form("quantity=1")).is_err());
    }

    #[test]
    fn json_bodies_read_like_forms() {
        let fields =
            Fields::from_json(br#"{"product_id": "OLJCESPC7Z", "quantity": 3, "note": null}"#)
                .unwrap();
        let added = add_to_cart(&fields).unwrap();
        assert_eq!(
            (added.product_id.as_str(), added.quantity),
            ("OLJCESPC7Z", 3)
        );
        assert!(Fields::from_json(b"[1]").is_err());
        assert!(Fields::from_json(br#"{"quantity": [1]}"#).is_err());
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(is_email("someone@example.com"));
        for bad in [
            "",
            "someone",
            "@example.com",
            "a@b",
            "a@b.",
            "a b@c.d",
            "a@b@c.d",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn an_expected_total_is_a_code_and_an_exact_amount() {
        use currency::api::Money;
        let total = Money::new("USD", 28, 980_000_000);
        assert_eq!(amount_text(&total), "USD 28.980000000");
        assert_eq!(parse_amount("USD 28.980000000"), Some(total.clone()));
        assert_eq!(parse_amount("USD 28.98"), Some(total));
        assert_eq!(parse_amount("JPY 2235"), Some(Money::new("JPY", 2235, 0)));
        for bad in [
            "",
            "USD",
            "usd 1",
            "USD -1",
            "USD 1.",
            "USD .5",
            "USD 1.0000000001",
            "USD 1e3",
            "USD 99999999999999999999",
        ] {
            assert_eq!(parse_amount(bad), None, "{bad:?}");
        }
    }
}
