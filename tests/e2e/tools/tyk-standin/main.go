// Command tyk-standin is the e2e's Tyk-like stack for the resilience test (tests/e2e/test_resilience.py): one
// static binary, two modes.
//
//	tyk-standin store   --listen :6379
//	tyk-standin gateway --listen :8080 --store toxiproxy:6380
//
// The store speaks the few Redis commands the gateway needs (PING, INCR, GET, SET) over RESP, as Tyk's Redis
// does. The gateway answers every HTTP request only after a round trip to the store (INCR hits), reached
// through Toxiproxy in the test: 200 with the count when the store answers, 503 with the error when it does
// not. So a toxic on the store's proxy shows in the gateway's answers, and the client sees what Tyk's users
// see. /healthz answers without the store: a store outage must not take the gateway out of its Service.
//
// On SIGTERM the gateway keeps serving for --drain (the time the Ingress controller needs to drop the pod from
// its endpoints), then shuts down gracefully: replacing a pod loses no request that reached it.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds | log.LUTC)
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: tyk-standin store|gateway [flags] (see -h of each)")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "store":
		fs := flag.NewFlagSet("store", flag.ExitOnError)
		listen := fs.String("listen", ":6379", "address to listen on")
		_ = fs.Parse(os.Args[2:])
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			log.Fatalf("store: %v", err)
		}
		log.Printf("store: listening on %s", ln.Addr())
		log.Fatal(NewStore().Serve(ln))
	case "gateway":
		fs := flag.NewFlagSet("gateway", flag.ExitOnError)
		listen := fs.String("listen", ":8080", "address to listen on")
		store := fs.String("store", "toxiproxy:6380", "the store's address (host:port)")
		timeout := fs.Duration("store-timeout", 2*time.Second, "bound of one store round trip")
		drain := fs.Duration("drain", 5*time.Second, "how long to keep serving after SIGTERM")
		_ = fs.Parse(os.Args[2:])
		runGateway(*listen, NewGateway(*store, *timeout), *drain)
	default:
		fmt.Fprintf(os.Stderr, "tyk-standin: unknown mode %q (store or gateway)\n", os.Args[1])
		os.Exit(2)
	}
}

// ---- store -------------------------------------------------------------------------------------------------

// Store is an in-memory key-value store speaking a subset of RESP.
type Store struct {
	mu   sync.Mutex
	data map[string]string
}

func NewStore() *Store { return &Store{data: map[string]string{}} }

func (s *Store) Serve(ln net.Listener) error {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return err
		}
		go s.handle(conn)
	}
}

func (s *Store) handle(conn net.Conn) {
	defer conn.Close()
	r, w := bufio.NewReader(conn), bufio.NewWriter(conn)
	for {
		args, err := readCommand(r)
		if err != nil {
			return
		}
		writeReply(w, s.exec(args))
		if w.Flush() != nil {
			return
		}
	}
}

// exec runs one command; the reply is RESP without the trailing CRLF.
func (s *Store) exec(args []string) string {
	if len(args) == 0 {
		return "-ERR empty command"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch cmd := strings.ToUpper(args[0]); {
	case cmd == "PING":
		return "+PONG"
	case cmd == "INCR" && len(args) == 2:
		n, err := strconv.ParseInt(s.data[args[1]], 10, 64)
		if err != nil && s.data[args[1]] != "" {
			return "-ERR value is not an integer"
		}
		s.data[args[1]] = strconv.FormatInt(n+1, 10)
		return ":" + s.data[args[1]]
	case cmd == "GET" && len(args) == 2:
		v, ok := s.data[args[1]]
		if !ok {
			return "$-1"
		}
		return fmt.Sprintf("$%d\r\n%s", len(v), v)
	case cmd == "SET" && len(args) == 3:
		s.data[args[1]] = args[2]
		return "+OK"
	default:
		return fmt.Sprintf("-ERR unknown command or wrong arguments: %q", args)
	}
}

func writeReply(w *bufio.Writer, reply string) { _, _ = w.WriteString(reply + "\r\n") }

// readCommand reads a RESP array of bulk strings (what Redis clients send), or an inline command.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return strings.Fields(line), nil
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 || n > 64 {
		return nil, fmt.Errorf("bad array header %q", line)
	}
	args := make([]string, 0, n)
	for range n {
		head, err := readLine(r)
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimPrefix(head, "$"))
		if !strings.HasPrefix(head, "$") || err != nil || size < 0 || size > 1<<20 {
			return nil, fmt.Errorf("bad bulk header %q", head)
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args = append(args, string(buf[:size]))
	}
	return args, nil
}

func readLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// ---- gateway -----------------------------------------------------------------------------------------------

// Gateway answers HTTP after a round trip to the store over one kept connection (as a Redis pool would).
type Gateway struct {
	addr    string
	timeout time.Duration
	pod     string

	mu   sync.Mutex
	conn net.Conn
	r    *bufio.Reader
}

func NewGateway(addr string, timeout time.Duration) *Gateway {
	pod, _ := os.Hostname()
	return &Gateway{addr: addr, timeout: timeout, pod: pod}
}

// Incr sends INCR KEY and returns the count. A kept connection that fails (closed or reset while idle) is
// replaced once, as Redis clients do; a second failure is the store's.
func (g *Gateway) Incr(key string) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var n int64
		if n, err = g.incrOnce(key); err == nil {
			return n, nil
		}
		g.drop()
	}
	return 0, err
}

func (g *Gateway) incrOnce(key string) (int64, error) {
	if g.conn == nil {
		conn, err := net.DialTimeout("tcp", g.addr, g.timeout)
		if err != nil {
			return 0, err
		}
		g.conn, g.r = conn, bufio.NewReader(conn)
	}
	_ = g.conn.SetDeadline(time.Now().Add(g.timeout))
	cmd := fmt.Sprintf("*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n", len(key), key)
	if _, err := io.WriteString(g.conn, cmd); err != nil {
		return 0, err
	}
	line, err := readLine(g.r)
	if err != nil {
		return 0, err
	}
	if !strings.HasPrefix(line, ":") {
		return 0, fmt.Errorf("store answered %q", line)
	}
	return strconv.ParseInt(line[1:], 10, 64)
}

func (g *Gateway) drop() {
	if g.conn != nil {
		_ = g.conn.Close()
	}
	g.conn, g.r = nil, nil
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("X-Gateway-Pod", g.pod)
	w.Header().Set("Content-Type", "text/plain")
	if req.URL.Path == "/healthz" {
		_, _ = io.WriteString(w, "ok\n")
		return
	}
	hits, err := g.Incr("hits")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(w, "gateway %s: store %s: %v\n", g.pod, g.addr, err)
		return
	}
	_, _ = fmt.Fprintf(w, "gateway %s: ok, hits=%d\n", g.pod, hits)
}

func runGateway(listen string, g *Gateway, drain time.Duration) {
	srv := &http.Server{Addr: listen, Handler: g, ReadHeaderTimeout: 10 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sig := <-stop
		log.Printf("gateway: %v: serving %s more, then shutting down", sig, drain)
		time.Sleep(drain)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	log.Printf("gateway %s: listening on %s, store %s", g.pod, listen, g.addr)
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("gateway: %v", err)
	}
	<-done // ListenAndServe returns as Shutdown starts; the requests in flight finish first
	log.Printf("gateway: stopped")
}
