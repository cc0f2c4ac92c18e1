// Command grpchealth is a static gRPC server for node tests of grpc probes:
// it serves the standard grpc.health.v1 Health service on GRPC_ADDR
// (default :9090), reporting SERVING overall and for the service names
// listed, comma-separated, in GRPC_SERVICES.
package main

import (
	"log"
	"net"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	addr := os.Getenv("GRPC_ADDR")
	if addr == "" {
		addr = ":9090"
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		log.Fatalf("grpchealth: %v", err)
	}
	hs := health.NewServer()
	for _, name := range strings.Split(os.Getenv("GRPC_SERVICES"), ",") {
		if name != "" {
			hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
		}
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	log.Printf("grpchealth: serving on %s", addr)
	log.Fatal(srv.Serve(l))
}
