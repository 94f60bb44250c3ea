//! The ads actor: a fixed table of ads by category.

use actix::{Actor, Context, Handler};
use rand::Rng;
use runtime::{Call, Module, NoConfig, StartContext, StartError};

use crate::api::{Ad, Ads, AdsError, GetAds, GetAdsResponse};

/// The most context keys one request may carry.
const MAX_KEYS: usize = 32;
/// How many random ads stand in when no category matches.
const RANDOM_ADS: usize = 2;

/// Online Boutique's ads, by category (`AdService.java`).
const TABLE: &[(&str, &str, &str)] = &[
    (
        "clothing",
        "/product/66VCHSJNUP",
        "Tank top for sale. 20% off.",
    ),
    (
        "accessories",
        "/product/1YMWWN1N4O",
        "Watch for sale. Buy one, get second kit for free",
    ),
    (
        "footwear",
        "/product/L9ECAV7KIM",
        "Loafers for sale. Buy one, get second one for free",
    ),
    (
        "hair",
        "/product/2ZYFJ3GM2N",
        "Hairdryer for sale. 50% off.",
    ),
    (
        "decor",
        "/product/0PUK6V6EV0",
        "Candle holder for sale. 30% off.",
    ),
    (
        "kitchen",
        "/product/9SIQT8TOJO",
        "Bamboo glass jar for sale. 10% off.",
    ),
    (
        "kitchen",
        "/product/6E92ZMYYFZ",
        "Mug for sale. Buy two, get third one for free",
    ),
];

fn ad(entry: &(&str, &str, &str)) -> Ad {
    Ad {
        redirect_url: entry.1.to_owned(),
        text: entry.2.to_owned(),
    }
}

/// The ads module.
pub struct AdsModule;

impl Module for AdsModule {
    type Service = Ads;
    type Config = NoConfig;

    async fn start(_: NoConfig, _: StartContext) -> Result<Ads, StartError> {
        Ok(Ads::start(AdsActor))
    }
}

struct AdsActor;

impl Actor for AdsActor {
    type Context = Context<Self>;
}

impl Handler<Call<GetAds>> for AdsActor {
    type Result = Result<GetAdsResponse, AdsError>;

    fn handle(&mut self, call: Call<GetAds>, _: &mut Context<Self>) -> Self::Result {
        let _span = call.span().entered();
        let keys = &call.context_keys;
        if keys.len() > MAX_KEYS {
            return Err(AdsError::TooManyKeys {
                count: keys.len(),
                max: MAX_KEYS,
            });
        }
        let mut ads: Vec<Ad> = keys
            .iter()
            .flat_map(|key| TABLE.iter().filter(move |entry| entry.0 == key))
            .map(ad)
            .collect();
        if ads.is_empty() {
            let mut rng = rand::rng();
            ads = (0..RANDOM_ADS)
                .map(|_| ad(&TABLE[rng.random_range(0..TABLE.len())]))
                .collect();
        }
        Ok(GetAdsResponse { ads })
    }
}
