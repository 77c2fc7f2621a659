module github.com/switchboard-oss/switchboard/bench

go 1.26.0
