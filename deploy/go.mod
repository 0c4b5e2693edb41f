module github.com/vrsky/vrsky/deploy

go 1.26.10

toolchain go1.27.3

require (
	github.com/stretchr/testify v1.12.1
	gopkg.in/yaml.v3 v3.0.1
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect
