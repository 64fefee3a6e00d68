# timedb in a container: `docker build -t timedb .` then
#   docker run -p 8000:8000 -v timedb-data:/data timedb
# The first run on an empty volume prints the admin key once (`docker logs`).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p timedb-server --bin timedb

FROM debian:bookworm-slim
RUN useradd --system --home-dir /data --create-home timedb
COPY --from=build /src/target/release/timedb /usr/local/bin/timedb
USER timedb
VOLUME /data
ENV TIMEDB_DSN=sqlite:///data/timedb.sqlite3 \
    TIMEDB_HOST=0.0.0.0 \
    TIMEDB_LOG_FORMAT=json
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD ["timedb", "--version"]
ENTRYPOINT ["timedb"]
CMD ["api"]
