module github.com/lrap/lrap

go 1.26

toolchain go1.26.11
