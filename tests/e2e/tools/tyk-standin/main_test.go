package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func startStore(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = NewStore().Serve(ln) }()
	return ln
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// The gateway's answer depends on the store: counts while it answers, 503 while there is none, counts again
// (over a new connection) once one listens on the address.
func TestGatewayFollowsTheStore(t *testing.T) {
	ln := startStore(t)
	addr := ln.Addr().String()
	srv := httptest.NewServer(NewGateway(addr, time.Second))
	defer srv.Close()

	for i, want := range []string{"hits=1", "hits=2"} {
		code, body := get(t, srv.URL+"/")
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("request %d: %d %q, want 200 with %s", i, code, body, want)
		}
	}
	// A gateway whose store is not there yet (the address freed): 503 naming the store, /healthz still 200.
	_ = ln.Close()
	dead := httptest.NewServer(NewGateway(addr, 200*time.Millisecond))
	defer dead.Close()
	if code, body := get(t, dead.URL+"/"); code != http.StatusServiceUnavailable || !strings.Contains(body, "store") {
		t.Fatalf("store gone: %d %q, want 503 naming the store", code, body)
	}
	if code, _ := get(t, dead.URL+"/healthz"); code != 200 {
		t.Fatalf("/healthz must not depend on the store: %d", code)
	}
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	go func() { _ = NewStore().Serve(ln2) }()
	defer ln2.Close()
	if code, body := get(t, dead.URL+"/"); code != 200 || !strings.Contains(body, "hits=1") {
		t.Fatalf("store back: %d %q, want 200 hits=1 (a fresh store)", code, body)
	}
}

func TestStoreCommands(t *testing.T) {
	s := NewStore()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "+PONG"},
		{[]string{"GET", "k"}, "$-1"},
		{[]string{"SET", "k", "v"}, "+OK"},
		{[]string{"GET", "k"}, "$1\r\nv"},
		{[]string{"INCR", "k"}, "-ERR value is not an integer"},
		{[]string{"incr", "n"}, ":1"},
		{[]string{"NOPE"}, `-ERR unknown command or wrong arguments: ["NOPE"]`},
	} {
		if got := s.exec(c.args); got != c.want {
			t.Errorf("%v: %q, want %q", c.args, got, c.want)
		}
	}
}
