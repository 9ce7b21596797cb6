// Command askeladden serves one Monty Python quote over HTTP.
package main

import (
	"context"
	"fmt"
	"os"
)

func main() {
	if err := run(context.Background(), os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "askeladden: %v\n", err)
		os.Exit(exitCode(err))
	}
}
