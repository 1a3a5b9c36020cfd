module k8s-hosts-controller/tests/e2e/tools/runc-wrapper

go 1.25.0
