module github.com/switchboard-oss/switchboard/web/console

go 1.26.0
