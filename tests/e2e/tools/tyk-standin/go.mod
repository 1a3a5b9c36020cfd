// A Tyk-like stand-in for the e2e's resilience test (see scripts/e2e/build-resilience-images.sh): one binary,
// two modes, the standard library only.
module k8s-hosts-controller/tests/e2e/tools/tyk-standin

go 1.25.0
