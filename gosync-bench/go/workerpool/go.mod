module gosyncbench/workerpool

go 1.19
