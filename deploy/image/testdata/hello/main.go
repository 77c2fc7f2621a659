// Command hello stands in for switchboard in the image tests: a small
// static binary.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("hello from the image test")
	os.Exit(0)
}
