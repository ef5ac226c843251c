// Command pingserver is the tiny static program the Docker smoke test bakes
// into a FROM-scratch image: it answers "pong <token>" on 127.0.0.1:<port>,
// which proves the container shares the host's network.
package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	addr := "127.0.0.1:" + os.Getenv("PING_PORT")
	token := os.Getenv("PING_TOKEN")
	http.HandleFunc("/ping", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "pong %s", token)
	})
	fmt.Println("pingserver listening on", addr)
	if err := http.ListenAndServe(addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
