using GpuNet.Layers;
using GpuNet.Tests;
using Xunit;

namespace GpuNet.Layers.Tests;

/// <summary>Modules of one's own: children kept in fields and auto-properties are found without hand-made names, lists and
/// dictionaries of modules are named as PyTorch names them, and Sequential can be subclassed.</summary>
public sealed class CompositeModuleTests
{
    private static Device Cpu => TestDevices.Cpu;

    /// <summary>A user's model as README shows it: no Child(...) calls.</summary>
    private sealed class TwoTower : Layer
    {
        private readonly Linear _left;
        public Linear Right { get; }
        public ModuleList<Linear> Blocks { get; }
        public ModuleDict<Layer> Heads { get; }
        private readonly Linear _alias;   // the same module again: registered once, under its first name

        public TwoTower(Device device) : base(device)
        {
            _left = new Linear(device, 3, 4);
            Right = new Linear(device, 3, 4);
            Blocks = new ModuleList<Linear>(device, new[] { new Linear(device, 4, 4), new Linear(device, 4, 4) });
            Heads = new ModuleDict<Layer>(device);
            Heads.Add("cls", new Linear(device, 4, 2));
            Heads.Add("act", new ActivationLayer(device, "relu"));
            _alias = _left;
        }

        public override Tensor Forward(Tensor x)
        {
            using var l = _left.Forward(x);
            using var r = Right.Forward(x);
            var h = Ops.Add(l, r);
            foreach (var block in Blocks)
            {
                var next = block.Forward(h);
                h.Dispose();
                h = next;
            }
            using (h)
                return Heads["cls"].Forward(h);
        }
    }

    [Fact]
    public void FieldsPropertiesListsAndDictionariesAreNamedAsPyTorchNamesThem()
    {
        using var model = new TwoTower(Cpu);
        var names = model.Parameters().Select(p => p.Name).ToList();
        Assert.Equal(new[]
        {
            "left.weight", "left.bias", "Right.weight", "Right.bias",
            "Blocks.0.weight", "Blocks.0.bias", "Blocks.1.weight", "Blocks.1.bias",
            "Heads.cls.weight", "Heads.cls.bias",
        }, names);
        Assert.Equal(names, model.StateDict().Select(p => p.Name));
        Assert.Equal(4, model.Children.Count);
        Assert.Equal((3 * 4 + 4) * 2 + (4 * 4 + 4) * 2 + 4 * 2 + 2, model.ParameterCount);
    }

    [Fact]
    public void DiscoveredChildrenTrainEvaluateSaveLoadAndDispose()
    {
        using var scope = Cpu.Scope();
        var model = new TwoTower(Cpu);
        var x = Tensor.FromArray(Cpu, new float[] { 1, 2, 3, -1, 0, 1 }, 2, 3);
        var loss = Ops.SumAll(model.Forward(x));
        loss.Backward();
        Assert.All(model.Parameters(), p => Assert.NotNull(p.Tensor.Grad));
        using var optimizer = new Adam(model.Parameters(), 1e-2f);
        optimizer.Step();
        model.Eval();
        Assert.All(model.Parameters(), p => Assert.False(p.Tensor.RequiresGrad));
        string path = Path.Combine(Path.GetTempPath(), $"two-tower-{Guid.NewGuid():N}.safetensors");
        try
        {
            model.Save(path);
            using var copy = new TwoTower(Cpu);
            using (var file = SafeTensors.Open(path))
                copy.Load(file);
            Assert.Equal(model.Forward(x).ToArray(), copy.Forward(x).ToArray());
        }
        finally
        {
            File.Delete(path);
        }
        var weight = model.Right.Parameters().First().Tensor;
        model.Dispose();
        Assert.True(weight.IsDisposed);
        Assert.True(model.Blocks[1].Parameters().All(p => p.Tensor.IsDisposed));
    }

    [Fact]
    public void ListAndDictionaryErrorsAreTyped()
    {
        using var dict = new ModuleDict<Linear>(Cpu);
        dict.Add("a", new Linear(Cpu, 2, 2));
        Assert.Equal("key", Assert.Throws<InvalidArgumentException>(() => dict.Add("a", new Linear(Cpu, 2, 2))).Argument);
        Assert.Throws<InvalidArgumentException>(() => dict.Add("x.y", new Linear(Cpu, 2, 2)));
        Assert.Contains("one of a", Assert.Throws<InvalidArgumentException>(() => dict["b"]).Message);
        using var list = new ModuleList<Linear>(Cpu);
        Assert.Throws<DeviceMismatchException>(() => list.Add(new Linear(TestDevices.Simulator, 2, 2)));
    }

    private sealed class Residual : Sequential
    {
        public Residual(Device device) : base(device, new Linear(device, 4, 4), new ActivationLayer(device, "relu")) { }

        public override Tensor Forward(Tensor x)
        {
            using var body = base.Forward(x);
            return Ops.Add(body, x);
        }
    }

    [Fact]
    public void SequentialCanBeSubclassed()
    {
        using var scope = Cpu.Scope();
        var block = new Residual(Cpu);
        Assert.Equal(new[] { "0.weight", "0.bias" }, block.Parameters().Select(p => p.Name));
        var x = Tensor.FromArray(Cpu, new float[] { 1, 2, 3, 4 }, 1, 4);
        using (Autograd.NoGrad())
        {
            var expected = Ops.Add(Ops.Relu(block.Layers[0].Forward(x)), x).ToArray();
            Assert.Equal(expected, block.Forward(x).ToArray());
        }
    }
}
