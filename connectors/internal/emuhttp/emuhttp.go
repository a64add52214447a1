// Package emuhttp runs an emulator's HTTP server: start on an address,
// report the base URL, stop without waiting on idle connections.
package emuhttp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server serves one handler over plain HTTP. The zero value is ready; Name
// prefixes its errors ("datacloud emulator").
type Server struct {
	Name string

	mu      sync.Mutex
	srv     *http.Server
	baseURL string
	conns   map[net.Conn]http.ConnState
}

// Start listens on addr (such as "127.0.0.1:0", which picks a free port)
// and serves h in the background. It returns the base URL, e.g.
// "http://127.0.0.1:43121".
func (s *Server) Start(addr string, h http.Handler) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return "", errors.New(s.Name + ": already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s: listen on %s: %w", s.Name, addr, err)
	}
	s.conns = map[net.Conn]http.ConnState{}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ConnState: s.trackConn}
	s.srv = srv
	s.baseURL = "http://" + ln.Addr().String()
	go func() { _ = srv.Serve(ln) }() // Serve returns ErrServerClosed after Close
	return s.baseURL, nil
}

// URL returns the base URL after Start, or "".
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// Close stops the server, waiting up to 5 seconds for requests in flight.
// It may be called more than once, and without Start.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	// Shutdown waits up to 5 s for connections that were opened but never
	// used (clients racing dials leave some); they carry no request, so
	// close them now.
	time.Sleep(10 * time.Millisecond)
	s.mu.Lock()
	for c, st := range s.conns {
		if st == http.StateNew {
			_ = c.Close()
		}
	}
	s.mu.Unlock()
	if err := <-done; err != nil {
		_ = srv.Close()
		return fmt.Errorf("%s: shutdown: %w", s.Name, err)
	}
	return nil
}

func (s *Server) trackConn(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == http.StateClosed || st == http.StateHijacked {
		delete(s.conns, c)
		return
	}
	s.conns[c] = st
}
