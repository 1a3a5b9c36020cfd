// Command registry serves an in-memory OCI registry (go-containerregistry's pkg/registry) on one or more
// addresses. The module's own cmd/registry listens on 127.0.0.1 only; a kind node reaches this machine through
// the kind network's gateway, so the e2e listens there too.
package main

import (
	"flag"
	"log"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:5001", "comma-separated host:port addresses to serve on")
	flag.Parse()
	handler := registry.New()
	errs := make(chan error)
	for _, addr := range strings.Split(*listen, ",") {
		go func(addr string) {
			log.Printf("serving on %s", addr)
			errs <- http.ListenAndServe(addr, handler)
		}(strings.TrimSpace(addr))
	}
	log.Fatal(<-errs)
}
