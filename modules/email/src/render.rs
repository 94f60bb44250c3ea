//! Rendering a confirmation from the templates in `templates/`.

use askama::Template;
use orders::api::Order;

/// One line of the order, formatted.
pub struct Line {
    pub name: String,
    pub product_id: String,
    pub quantity: i32,
    pub cost: String,
}

#[derive(Template)]
#[template(path = "confirmation.html")]
struct Html<'a> {
    order: &'a Order,
    lines: &'a [Line],
    shipping: String,
    total: String,
}

#[derive(Template)]
#[template(path = "confirmation.txt", escape = "none")]
struct Text<'a> {
    order: &'a Order,
    lines: &'a [Line],
    shipping: String,
    total: String,
}

/// The rendered confirmation.
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Renders the confirmation of `order`.
pub fn confirmation(order: &Order) -> Result<Rendered, askama::Error> {
    let lines: Vec<Line> = order
        .items
        .iter()
        .map(|line| Line {
            name: line.name.clone(),
            product_id: line.item.product_id.clone(),
            quantity: line.item.quantity,
            cost: line.cost.display(),
        })
        .collect();
    let (shipping, total) = (order.shipping_cost.display(), order.total.display());
    let html = Html {
        order,
        lines: &lines,
        shipping: shipping.clone(),
        total: total.clone(),
    }
    .render()?;
    let text = Text {
        order,
        lines: &lines,
        shipping,
        total,
    }
    .render()?;
    Ok(Rendered {
        subject: format!("Your Boutique order {}", order.order_id),
        text,
        html,
    })
}
