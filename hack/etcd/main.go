// Command etcd is the upstream etcd server, built from the
// go.etcd.io/etcd/server/v3 module. It is the same entry point as etcd's own
// server/main.go, so it accepts all of etcd's usual flags.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
