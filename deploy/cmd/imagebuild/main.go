// Command imagebuild builds the Switchboard container image from a static
// switchboard binary without a container engine, and writes it as an OCI
// image layout directory and as a tarball for `docker load`. `make image`
// runs it; see package image for what goes in.
//
//	imagebuild -binary bin/image/switchboard -oci bin/image/oci -tar bin/image/switchboard.tar \
//	    -tag ghcr.io/switchboard-oss/switchboard:dev -version dev -revision $(git rev-parse HEAD)
//
// The times of the files and of the image are SOURCE_DATE_EPOCH when it is
// set, else the Unix epoch. It prints the image's digest (the registry's
// name@digest) and its ID (what `docker images` shows).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/switchboard-oss/switchboard/deploy/image"
)

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	f := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	f.SetOutput(stderr)
	var o image.Options
	f.StringVar(&o.Binary, "binary", "", "Static switchboard binary for linux/-arch (CGO_ENABLED=0). Required.")
	f.StringVar(&o.CACerts, "ca-certs", image.DefaultCACerts, "PEM bundle of CA certificates copied to "+image.CACertsPath+" (Debian's ca-certificates of the build machine by default).")
	f.StringVar(&o.Arch, "arch", "amd64", "Architecture of the binary and the image: amd64 or arm64.")
	f.StringVar(&o.Source, "source", "https://github.com/switchboard-oss/switchboard", "Label "+image.LabelSource+".")
	f.StringVar(&o.Version, "version", "dev", "Label "+image.LabelVersion+".")
	f.StringVar(&o.Revision, "revision", "", "Label "+image.LabelRevision+", the commit built; empty leaves it out.")
	f.StringVar(&o.Licenses, "licenses", "", "Label "+image.LabelLicenses+", an SPDX expression; empty leaves it out.")
	tag := f.String("tag", "ghcr.io/switchboard-oss/switchboard:dev", "Name and tag of the image in the tarball and the layout.")
	ociDir := f.String("oci", "", "Directory to write the OCI image layout to (replaced). Empty: none.")
	tarPath := f.String("tar", "", "File to write the `docker load` tarball to (replaced). Empty: none.")
	if err := f.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if o.Binary == "" || f.NArg() > 0 {
		fmt.Fprintln(stderr, "imagebuild: -binary is required and there are no arguments")
		return 2
	}
	ref, err := name.NewTag(*tag)
	if err != nil {
		fmt.Fprintf(stderr, "imagebuild: -tag %q: %v\n", *tag, err)
		return 2
	}
	if s := getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil || sec < 0 {
			fmt.Fprintf(stderr, "imagebuild: SOURCE_DATE_EPOCH %q is not a number of seconds since 1970\n", s)
			return 2
		}
		o.Created = time.Unix(sec, 0)
	}

	img, err := image.Build(o)
	if err != nil {
		fmt.Fprintf(stderr, "imagebuild: %v\n", err)
		return 1
	}
	d, err := image.DigestsOf(img)
	if err != nil {
		fmt.Fprintf(stderr, "imagebuild: %v\n", err)
		return 1
	}
	if *ociDir != "" {
		if err := image.WriteLayout(*ociDir, ref, img); err != nil {
			fmt.Fprintf(stderr, "imagebuild: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "imagebuild: OCI layout %s\n", *ociDir)
	}
	if *tarPath != "" {
		if err := image.WriteTarball(*tarPath, ref, img); err != nil {
			fmt.Fprintf(stderr, "imagebuild: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "imagebuild: docker load -i %s\n", *tarPath)
	}
	fmt.Fprintf(stdout, "%s@%s\n", ref.Context().Name(), d.Manifest)
	fmt.Fprintf(stdout, "image ID %s\n", d.Config)
	return 0
}
