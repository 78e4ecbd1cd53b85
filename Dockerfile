# syntax=docker/dockerfile:1
# Build: docker build --build-arg VERSION=v0.1.0 -t asnrelay .
# Run:   docker run -p 8080:8080 -v asnrelay-data:/data -v $PWD/asnrelay.yaml:/etc/asnrelay/asnrelay.yaml:ro asnrelay

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/asnrelay . \
 && mkdir -p /out/data

# distroless/static: CA certificates and tzdata, no shell, runs as nonroot (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/asnrelay /usr/local/bin/asnrelay
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["asnrelay"]
CMD ["serve", "--config", "/etc/asnrelay/asnrelay.yaml"]
