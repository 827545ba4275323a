module gosyncbench/mirror

go 1.19
