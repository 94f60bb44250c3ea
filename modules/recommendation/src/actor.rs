//! The recommendation actor: asks the catalog, filters, samples.

use actix::{Actor, Context, Handler, ResponseFuture};
use catalog::api::{Catalog, ListProducts};
use rand::seq::SliceRandom;
use runtime::{
    Call, ConfigRefused, Module, Outcome, Service, ServiceRef, StartContext, StartError,
};
use serde::Deserialize;
use tracing::Instrument;

use crate::api::{
    ListRecommendations, ListRecommendationsResponse, Recommendation, RecommendationError,
};

/// `[modules.recommendation]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecommendationConfig {
    /// The most products one answer recommends (at least 1: `check`
    /// refuses 0, which would recommend nothing ever).
    pub max_results: usize,
}

impl Default for RecommendationConfig {
    fn default() -> Self {
        RecommendationConfig { max_results: 5 }
    }
}

/// The recommendation module. Depends on `catalog`.
pub struct RecommendationModule;

impl Module for RecommendationModule {
    type Service = Recommendation;
    type Config = RecommendationConfig;

    fn dependencies() -> Vec<&'static str> {
        vec![Catalog::NAME]
    }

    fn check(config: &RecommendationConfig) -> Result<(), ConfigRefused> {
        if config.max_results == 0 {
            return Err(ConfigRefused(
                "max_results = 0 would recommend nothing; give at least 1 (the original's is 5)"
                    .to_owned(),
            ));
        }
        Ok(())
    }

    async fn start(
        config: RecommendationConfig,
        ctx: StartContext,
    ) -> Result<Recommendation, StartError> {
        let actor = RecommendationActor {
            catalog: ctx.service::<Catalog>()?,
            max_results: config.max_results,
        };
        Ok(Recommendation::start(actor))
    }
}

struct RecommendationActor {
    catalog: ServiceRef<Catalog>,
    max_results: usize,
}

impl Actor for RecommendationActor {
    type Context = Context<Self>;
}

impl Handler<Call<ListRecommendations>> for RecommendationActor {
    type Result = ResponseFuture<Outcome<ListRecommendations>>;

    fn handle(&mut self, call: Call<ListRecommendations>, _: &mut Context<Self>) -> Self::Result {
        let catalog = self.catalog.clone();
        let max_results = self.max_results;
        let span = call.span();
        let (message, meta) = call.into_parts();
        let ListRecommendations {
            product_ids: exclude,
            ..
        } = message;
        // The catalog call waits no longer than this call's caller.
        Box::pin(
            meta.scope(
                async move {
                    let products = catalog
                        .call(ListProducts {})
                        .await
                        .map_err(RecommendationError::CatalogUnavailable)?
                        .map_err(RecommendationError::Catalog)?
                        .products;
                    // A set: a caller may exclude many ids, and each
                    // product is looked up once.
                    let exclude: std::collections::HashSet<String> = exclude.into_iter().collect();
                    let mut candidates: Vec<String> = products
                        .into_iter()
                        .map(|p| p.id)
                        .filter(|id| !exclude.contains(id))
                        .collect();
                    let count = max_results.min(candidates.len());
                    let (chosen, _) = candidates.partial_shuffle(&mut rand::rng(), count);
                    let product_ids = chosen.to_vec();
                    tracing::debug!(count = product_ids.len(), "recommended");
                    Ok(ListRecommendationsResponse { product_ids })
                }
                .instrument(span),
            ),
        )
    }
}
