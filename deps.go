package main
import (
_ "github.com/spf13/cobra"
_ "go.etcd.io/bbolt"
_ "github.com/golang-jwt/jwt/v5"
_ "github.com/rs/zerolog"
_ "github.com/cenkalti/backoff/v4"
_ "github.com/prometheus/client_golang/prometheus"
_ "go.yaml.in/yaml/v3"
)
func main(){}
