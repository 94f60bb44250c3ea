# The boutique binary in a small image, for `boutique deploy kube`:
#
#   docker build -t boutique:dev .
#
# Build stage: the release binary. Run stage: Debian slim with CA
# certificates, running as an unprivileged user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked && cp target/release/boutique /boutique

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 boutique \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/boutique boutique \
    && mkdir -p /var/lib/boutique && chown boutique /var/lib/boutique
COPY --from=build /boutique /usr/local/bin/boutique
USER 10001
WORKDIR /var/lib/boutique
ENTRYPOINT ["/usr/local/bin/boutique"]
