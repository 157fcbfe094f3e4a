# Multi-stage build: compile in the Rust image, run in a slim Debian with only the binary,
# the catalog (dialogs/) and the default configuration.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY config ./config
COPY dialogs ./dialogs
RUN cargo build --release --locked --bin kaitong

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/kaitong --create-home kaitong
WORKDIR /opt/kaitong
COPY --from=build /src/target/release/kaitong /usr/local/bin/kaitong
COPY dialogs ./dialogs
COPY config ./config
USER kaitong
ENV KAITONG_SERVER__LISTEN=0.0.0.0:8080 \
    KAITONG_STORE__URL=embedded:///var/lib/kaitong/kaitong.db \
    KAITONG_LOG__FORMAT=json
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["kaitong"]
CMD ["serve"]
