# The project's images, FROM scratch around static binaries (no registry is
# reachable, so there is no base image to pull). The build context is a
# directory holding just the two binaries, built with
#   RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target x86_64-unknown-linux-gnu
# `scripts/sandbox images` prepares that context and builds every target.

# The operator: `docker build --target operator --build-arg VERSION=0.1.0 \
#   -t aerospike-swarm-operator:0.1.0 CONTEXT` (scripts/build-image does it all,
# and pushes to a registry with --push). No shell, no libc: one static binary.
# VERSION names the build in the image's labels (default: dev).
FROM scratch AS operator
ARG VERSION=dev
LABEL org.opencontainers.image.title="aerospike-swarm-operator" \
      org.opencontainers.image.description="Runs Aerospike clusters on Docker Swarm" \
      org.opencontainers.image.version=$VERSION \
      org.opencontainers.image.licenses="Apache-2.0"
COPY aerospike-swarm-operator /aerospike-swarm-operator
# Not root: a numeric user and group (FROM scratch has no /etc/passwd), the
# "nonroot" 65532 of distroless images. To open the Docker socket (root and
# group `docker`, mode 660, on Debian) the process needs the socket's group:
# deploy/operator.yml sets `user: 65532:${DOCKER_GID}`, `docker run` takes
# `--group-add $(stat -c %g /var/run/docker.sock)`. It binds 9090 (> 1024)
# and writes no file, so it needs nothing else.
USER 65532:65532
# Metrics, /healthz and /readyz (run --metrics-address).
EXPOSE 9090
ENTRYPOINT ["/aerospike-swarm-operator"]
CMD ["run"]

# aerospike-sim, the Aerospike stand-in, tagged as the version it reports:
#   docker build --target aerospike-sim --build-arg SIM_BUILD=7.1.0.0 \
#     --build-arg SIM_EDITION=community -t aerospike/aerospike-server:7.1.0.0 CONTEXT
# It takes the server's own arguments (`--config-file /run/secrets/aerospike.conf`),
# so the published Swarm recipe's `command:` works unchanged.
# SIM_FAULT (default empty: a healthy server) bakes in AEROSPIKE_SIM_FAULT, for
# tags that fail the way a bad new server version fails (sim/README.md, Knobs):
#   --build-arg SIM_BUILD=7.2.0.0 --build-arg SIM_FAULT=never-join    -t aerospike/aerospike-server:7.2.0.0-nojoin
#     serves info as a node alone but never clusters with anyone (incompatible heartbeats)
#   --build-arg SIM_BUILD=7.2.0.0 --build-arg SIM_FAULT=exit-on-start -t aerospike/aerospike-server:7.2.0.0-crash
#     logs a fatal line and exits 1 about a second after start, before serving
# The binary layer comes before the ENV, so every tag shares it: a faulty tag
# differs from its healthy version only in its config (ENV), and builds and
# loads in no time.
FROM scratch AS aerospike-sim
LABEL org.opencontainers.image.title="aerospike-sim" \
      org.opencontainers.image.description="Stand-in Aerospike server for tests (not Aerospike)"
COPY aerospike-sim /aerospike-sim
EXPOSE 3000 3001 3002
ENTRYPOINT ["/aerospike-sim"]
ARG SIM_BUILD=7.1.0.0
ARG SIM_EDITION=community
ARG SIM_FAULT=
ENV AEROSPIKE_SIM_BUILD=$SIM_BUILD AEROSPIKE_SIM_EDITION=$SIM_EDITION AEROSPIKE_SIM_FAULT=$SIM_FAULT
