using GpuNet.Bench;

return GpuNetCli.Invoke(args);
