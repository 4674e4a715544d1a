using System.Collections.Concurrent;
using System.Reflection;
using System.Reflection.Emit;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Operations;

namespace Scst.Host.Tests.ScalarLifetime;

/// <summary>
/// Finds every TorchSharp <c>Scalar</c> that a native call may outlive (TorchSharp 0.107 hands <c>scalar.Handle</c>
/// to native code without keeping the Scalar alive, so a temporary can be finalized — its native memory freed —
/// mid-call; docs: ../shared/design/PITFALLS.md, src/Model/Scalars.cs). It compiles C# sources against the real
/// assemblies and reports, from the semantic model:
/// <list type="bullet">
/// <item>every conversion to Scalar (<c>t.mul(0.5)</c>, <c>x + 1.0</c>, <c>(Scalar)v</c>) and every <c>ToScalar()</c> call,
/// unless its result is held where the GC cannot collect it during the call: a <c>using</c> variable (disposed at the
/// end of its scope) or a field (alive with its owner);</item>
/// <item>every call into TorchSharp whose own code makes such a temporary (read from its IL, following its calls into
/// TorchSharp): <c>a + b</c> and <c>t.add(u)</c> pass a hidden <c>alpha = 1</c> this way.</item>
/// </list>
/// </summary>
public static class ScalarTemporaryScan
{
    public sealed record Finding(string File, int Line, string Code, string Why)
    {
        public override string ToString() => $"{File}:{Line}: {Why}: {Code}";
    }

    const string ScalarType = "TorchSharp.Scalar";

    /// <summary>The C# compilation of one project folder: its sources (bin/obj excluded) plus <paramref name="generated"/> files, against <paramref name="references"/>.</summary>
    public static CSharpCompilation Compile(string assemblyName, IEnumerable<string> sources, IEnumerable<MetadataReference> references, bool executable = false)
    {
        var options = new CSharpParseOptions(LanguageVersion.Preview);
        var trees = sources.Select(f => CSharpSyntaxTree.ParseText(File.ReadAllText(f), options, f)).ToList();
        return CSharpCompilation.Create(assemblyName, trees, references,
            new CSharpCompilationOptions(executable ? OutputKind.ConsoleApplication : OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable, allowUnsafe: true));
    }

    /// <summary>Every finding of the compilation's syntax trees (those whose path passes <paramref name="include"/>).</summary>
    public static List<Finding> Scan(CSharpCompilation compilation, Func<string, bool>? include = null)
    {
        var findings = new List<Finding>();
        foreach (var tree in compilation.SyntaxTrees)
        {
            if (include is not null && !include(tree.FilePath)) continue;
            var model = compilation.GetSemanticModel(tree);
            var seen = new HashSet<IOperation>();
            foreach (var node in tree.GetRoot().DescendantNodes())
            {
                if (model.GetOperation(node) is not { } root || root.Parent is not null && seen.Contains(root.Parent)) continue;
                foreach (var op in Descendants(root))
                {
                    if (!seen.Add(op)) continue;
                    if (Check(op) is { } why)
                    {
                        var line = op.Syntax.GetLocation().GetLineSpan().StartLinePosition.Line + 1;
                        findings.Add(new Finding(tree.FilePath, line, op.Syntax.ToString().Split('\n')[0].Trim(), why));
                    }
                }
            }
        }
        return [.. findings.Distinct()];
    }

    static IEnumerable<IOperation> Descendants(IOperation root)
    {
        yield return root;
        foreach (var d in root.Descendants()) yield return d;
    }

    static string? Check(IOperation op)
    {
        switch (op)
        {
            case IConversionOperation c when c.Conversion.IsUserDefined && IsScalar(c.Type) && !HeldOutsideTheCall(c):
                return $"temporary Scalar from {c.Operand.Type?.ToDisplayString() ?? "a value"}";
            case IInvocationOperation i when i.TargetMethod.Name == "ToScalar" && IsScalar(i.Type) && !HeldOutsideTheCall(i):
                return "temporary Scalar from ToScalar()";
            case IInvocationOperation i when MakesHiddenScalar(i.TargetMethod):
                return $"TorchSharp's {i.TargetMethod.ToDisplayString()} makes a temporary Scalar inside";
            case IBinaryOperation { OperatorMethod: { } m } when MakesHiddenScalar(m):
                return $"TorchSharp's {m.ToDisplayString()} makes a temporary Scalar inside";
            case IUnaryOperation { OperatorMethod: { } m } when MakesHiddenScalar(m):
                return $"TorchSharp's {m.ToDisplayString()} makes a temporary Scalar inside";
            case ICompoundAssignmentOperation { OperatorMethod: { } m } when MakesHiddenScalar(m):
                return $"TorchSharp's {m.ToDisplayString()} makes a temporary Scalar inside";
        }
        return null;
    }

    static bool IsScalar(ITypeSymbol? t) => t?.ToDisplayString().TrimEnd('?') == ScalarType;

    /// <summary>A using variable's initializer (disposed, so alive, at the end of its scope) or a field's value.</summary>
    static bool HeldOutsideTheCall(IOperation value)
    {
        var p = value.Parent;
        if (p is IFieldInitializerOperation) return true;
        if (p is ISimpleAssignmentOperation { Target: IFieldReferenceOperation } a && a.Value == value) return true;
        if (p is IVariableInitializerOperation { Parent: IVariableDeclaratorOperation { Parent: IVariableDeclarationOperation decl } })
            return decl.Parent is IUsingDeclarationOperation or IUsingOperation
                or IVariableDeclarationGroupOperation { Parent: IUsingDeclarationOperation or IUsingOperation };
        return false;
    }

    // TorchSharp's IL: does a method (or a TorchSharp method it calls) convert to Scalar?
    static readonly ConcurrentDictionary<MethodBase, bool> IlVerdicts = new();
    static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!).ToDictionary(o => o.Value);

    static bool MakesHiddenScalar(IMethodSymbol method)
    {
        if (method.ContainingAssembly?.Name != "TorchSharp") return false;
        return ToReflection(method) is { } m && MakesScalar(m, depth: 0);
    }

    static MethodBase? ToReflection(IMethodSymbol symbol)
    {
        var type = typeof(TorchSharp.Scalar).Assembly.GetType(MetadataName(symbol.ContainingType.OriginalDefinition));
        if (type is null) return null;
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly;
        var def = symbol.ReducedFrom ?? symbol.OriginalDefinition;
        IEnumerable<MethodBase> candidates = def.MethodKind == MethodKind.Constructor ? type.GetConstructors(all) : type.GetMethods(all).Where(m => m.Name == def.MetadataName);
        return candidates.FirstOrDefault(m =>
        {
            var ps = m.GetParameters();
            return ps.Length == def.Parameters.Length && ps.Zip(def.Parameters).All(x => SameType(x.Item1.ParameterType, x.Item2.Type));
        });
    }

    static string MetadataName(INamedTypeSymbol t) =>
        t.ContainingType is { } outer ? MetadataName(outer) + "+" + t.MetadataName : (t.ContainingNamespace.IsGlobalNamespace ? "" : t.ContainingNamespace.ToDisplayString() + ".") + t.MetadataName;

    static bool SameType(Type r, ITypeSymbol s)
    {
        if (r.IsByRef) r = r.GetElementType()!;
        if (s is IArrayTypeSymbol a) return r.IsArray && SameType(r.GetElementType()!, a.ElementType);
        if (s is ITypeParameterSymbol) return r.IsGenericParameter;
        if (r.IsGenericParameter) return false;
        var name = s is INamedTypeSymbol n ? n.MetadataName : s.Name;
        return r.Name == name;
    }

    static bool MakesScalar(MethodBase method, int depth)
    {
        if (IlVerdicts.TryGetValue(method, out var known)) return known;
        IlVerdicts[method] = false; // recursion guard
        var verdict = Calls(method).Any(callee =>
            (callee.DeclaringType?.FullName == ScalarType && callee.Name == "op_Implicit") || callee.Name == "ToScalar" ||
            (depth < 6 && callee.DeclaringType?.Assembly == typeof(TorchSharp.Scalar).Assembly && MakesScalar(callee, depth + 1)));
        IlVerdicts[method] = verdict;
        return verdict;
    }

    /// <summary>The methods a method's IL calls (call, callvirt, newobj, ldftn), by a walk of its instructions.</summary>
    static IEnumerable<MethodBase> Calls(MethodBase method)
    {
        byte[]? il;
        try { il = method.GetMethodBody()?.GetILAsByteArray(); }
        catch (Exception e) when (e is InvalidOperationException or NotSupportedException) { il = null; }
        if (il is null) yield break;
        for (var i = 0; i < il.Length;)
        {
            var code = il[i] == 0xFE ? OpCodesByValue[(short)(0xFE00 | il[i + 1])] : OpCodesByValue[il[i]];
            i += code.Size;
            if (code.OperandType == OperandType.InlineMethod)
            {
                MethodBase? callee = null;
                try
                {
                    callee = method.Module.ResolveMethod(BitConverter.ToInt32(il, i),
                        method.DeclaringType?.IsGenericType == true ? method.DeclaringType.GetGenericArguments() : null,
                        method.IsGenericMethod ? method.GetGenericArguments() : null);
                }
                catch (Exception e) when (e is ArgumentException or BadImageFormatException or TypeLoadException) { }
                if (callee is not null) yield return callee;
            }
            i += code.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                _ => 4,
            };
        }
    }
}
