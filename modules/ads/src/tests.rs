//! Actor-message tests: the ads actor alone.

use runtime::{ServiceRef, ServiceRegistry, start_alone};

use crate::AdsModule;
use crate::api::{Ads, AdsError, GetAds};

async fn ads() -> ServiceRef<Ads> {
    start_alone::<AdsModule>(
        Default::default(),
        ServiceRegistry::new(),
        std::env::temp_dir(),
    )
    .await
    .unwrap()
}

fn keys(keys: &[&str]) -> GetAds {
    GetAds {
        context_keys: keys.iter().map(|k| k.to_string()).collect(),
    }
}

#[actix_rt::test]
async fn every_ad_of_each_category_in_key_order() {
    let reply = ads()
        .await
        .call(keys(&["kitchen", "hair"]))
        .await
        .unwrap()
        .unwrap();
    let urls: Vec<&str> = reply.ads.iter().map(|a| a.redirect_url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "/product/9SIQT8TOJO",
            "/product/6E92ZMYYFZ",
            "/product/2ZYFJ3GM2N"
        ]
    );
}

#[actix_rt::test]
async fn repeated_keys_repeat_ads() {
    let reply = ads()
        .await
        .call(keys(&["decor", "decor"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.ads.len(), 2);
    assert_eq!(reply.ads[0], reply.ads[1]);
}

#[actix_rt::test]
async fn no_match_gives_two_random_ads_from_the_table() {
    let service = ads().await;
    let mut seen = std::collections::HashSet::new();
    for request in [
        keys(&[]),
        keys(&["tops", "beauty", "home"]),
        keys(&["nothing"]),
    ] {
        for _ in 0..20 {
            let reply = service.call(request.clone()).await.unwrap().unwrap();
            assert_eq!(reply.ads.len(), 2);
            for ad in reply.ads {
                assert!(ad.redirect_url.starts_with("/product/"), "{ad:?}");
                seen.insert(ad.redirect_url);
            }
        }
    }
    assert!(seen.len() > 2, "random ads were always the same: {seen:?}");
}

#[actix_rt::test]
async fn too_many_keys_are_refused() {
    let many: Vec<&str> = vec!["kitchen"; 40];
    let reply = ads().await.call(keys(&many)).await.unwrap();
    assert_eq!(reply, Err(AdsError::TooManyKeys { count: 40, max: 32 }));
}

/// `{}`, as proto3's JSON writes a request with no keys, is one: any ads
/// (`boutique call ads GetAds` sends it; it was refused).
#[test]
fn a_request_with_its_empty_list_left_out_is_read() {
    let request: GetAds = serde_json::from_str("{}").unwrap();
    assert!(request.context_keys.is_empty());
}
