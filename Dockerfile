# Multi-stage build: compile in the Rust image, run in a slim Debian with only the binary,
# the catalog (dialogs/) and the default configuration.
#   docker build --build-arg GIT_COMMIT=$(git rev-parse --short=12 HEAD) -t kaitong .
FROM rust:1-bookworm AS build
WORKDIR /src
# .git is not sent (.dockerignore): `kaitong --version` names the commit given here.
ARG GIT_COMMIT=unknown
ENV GIT_COMMIT=${GIT_COMMIT}
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY benches ./benches
# The workspace's other member (the developer's tools): cargo reads its manifest; `--bin kaitong`
# builds none of it.
COPY dev ./dev
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
# Inside the container both listeners face the container network; publish them on the host as
# 127.0.0.1:8080 (behind the TLS proxy, /wecom/* only) and 127.0.0.1:8081 (console, API,
# metrics). With any demo secret of config/default.toml left, `serve` refuses to start here.
ENV KAITONG_SERVER__LISTEN=0.0.0.0:8080 \
    KAITONG_SERVER__ADMIN_LISTEN=0.0.0.0:8081 \
    KAITONG_STORE__URL=embedded:///var/lib/kaitong/kaitong.db \
    KAITONG_LOG__FORMAT=json
# The embedded store; keep it on a volume (Redis deployments do not write here).
VOLUME ["/var/lib/kaitong"]
EXPOSE 8080 8081
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["kaitong", "healthcheck"]
ENTRYPOINT ["kaitong"]
CMD ["serve"]
