# syntax=docker/dockerfile:1
# jobalert: one static binary on a distroless base.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/jobalert ./cmd/jobalert

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/jobalert /usr/local/bin/jobalert
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/jobalert"]
CMD ["serve"]
