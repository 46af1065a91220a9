"""Written by `python -m nb2pipe.notebook.pylab` (numpy 2.4.6, matplotlib 3.11.2).

For each namespace: the import statement binding a name (`{}` stands for the name), and
the names it binds. Do not edit: run the module again."""

NAMESPACES: dict[str, dict[str, str]] = {
    "%pylab": {
        "from IPython.core.pylabtools import {}": (
            "figsize getfigs"
        ),
        "from matplotlib import cbook": (
            "cbook"
        ),
        "from matplotlib import cm": (
            "cm"
        ),
        "from matplotlib import mlab": (
            "mlab"
        ),
        "from matplotlib import pylab": (
            "pylab"
        ),
        "from matplotlib import pyplot": (
            "pyplot"
        ),
        "from matplotlib import rcsetup": (
            "rcsetup"
        ),
        "from matplotlib import style": (
            "style"
        ),
        "from matplotlib.cbook import {}": (
            "flatten silent_list"
        ),
        "from matplotlib.dates import {}": (
            "DAILY DateFormatter DateLocator DayLocator FR HOURLY HourLocator MINUTELY MO MONTHLY "
            "MinuteLocator MonthLocator RRuleLocator SA SECONDLY SU SecondLocator TH TU WE WEEKLY "
            "WeekdayLocator YEARLY YearLocator date2num datestr2num drange num2date relativedelta "
            "rrule"
        ),
        "from matplotlib.mlab import {}": (
            "detrend detrend_linear detrend_mean detrend_none window_hanning window_none"
        ),
        "from matplotlib.pyplot import {}": (
            "AbstractContextManager Annotation Arrow Artist AutoLocator AxLine Axes BackendFilter "
            "Button Circle Colorizer ColorizingArtist Colormap Enum ExitStack Figure FigureBase "
            "FigureCanvasBase FigureManagerBase FixedFormatter FixedLocator FormatStrFormatter "
            "Formatter FuncFormatter GridSpec IO IndexLocator Line2D LinearLocator Locator "
            "LogFormatter LogFormatterExponent LogFormatterMathtext LogLocator MaxNLocator "
            "MouseButton MultipleLocator Normalize NullFormatter NullLocator PolarAxes Polygon "
            "Rectangle ScalarFormatter Slider Subplot SubplotSpec TYPE_CHECKING Text TickHelper "
            "Widget acorr angle_spectrum annotate annotations arrow autoscale autumn "
            "available_backends axes axhline axhspan axis axline axvline axvspan backend_registry "
            "bar bar_label barbs barh bone box boxplot broken_barh cast cla clabel clf clim close "
            "cohere color_sequences colorbar colormaps connect contour contourf cool copper csd "
            "cycler delaxes disconnect draw draw_all draw_if_interactive ecdf errorbar eventplot "
            "figaspect figimage figlegend fignum_exists figtext figure fill fill_between "
            "fill_betweenx findobj flag gca gcf gci get get_backend get_cmap "
            "get_current_fig_manager get_figlabels get_fignums get_plot_commands get_scale_names "
            "getp ginput gray grid grouped_bar hexbin hist hist2d hlines hot hsv imread imsave "
            "imshow inferno install_repl_displayhook interactive ioff ion isinteractive jet "
            "legend locator_params loglog magma magnitude_spectrum margins matshow minorticks_off "
            "minorticks_on new_figure_manager nipy_spectral overload pause pcolor pcolormesh "
            "phase_spectrum pie pie_label pink plasma plot polar prism psd quiver quiverkey rc "
            "rcParams rcParamsDefault rcParamsOrig rc_context rcdefaults rgrids savefig sca "
            "scatter sci semilogx semilogy set_cmap set_loglevel setp show specgram spring spy "
            "stackplot stairs stem step streamplot subplot subplot2grid subplot_mosaic "
            "subplot_tool subplots subplots_adjust summer suptitle switch_backend table text "
            "thetagrids tick_params ticklabel_format tight_layout title tricontour tricontourf "
            "tripcolor triplot twinx twiny uninstall_repl_displayhook violinplot viridis vlines "
            "waitforbuttonpress winter xcorr xkcd xlabel xlim xscale xticks ylabel ylim yscale "
            "yticks"
        ),
        "from numpy import char": (
            "char"
        ),
        "from numpy import core": (
            "core"
        ),
        "from numpy import ctypeslib": (
            "ctypeslib"
        ),
        "from numpy import dtypes": (
            "dtypes"
        ),
        "from numpy import exceptions": (
            "exceptions"
        ),
        "from numpy import f2py": (
            "f2py"
        ),
        "from numpy import fft": (
            "fft"
        ),
        "from numpy import lib": (
            "lib"
        ),
        "from numpy import linalg": (
            "linalg"
        ),
        "from numpy import ma": (
            "ma"
        ),
        "from numpy import polynomial": (
            "polynomial"
        ),
        "from numpy import random": (
            "random"
        ),
        "from numpy import rec": (
            "rec"
        ),
        "from numpy import strings": (
            "strings"
        ),
        "from numpy import testing": (
            "testing"
        ),
        "from numpy import typing": (
            "typing"
        ),
        "from numpy import {}": (
            "False_ ScalarType True_ abs absolute acos acosh add all allclose amax amin angle any "
            "append apply_along_axis apply_over_axes arange arccos arccosh arcsin arcsinh arctan "
            "arctan2 arctanh argmax argmin argpartition argsort argwhere around array "
            "array2string array_equal array_equiv array_repr array_split array_str asanyarray "
            "asarray asarray_chkfinite ascontiguousarray asfortranarray asin asinh asmatrix "
            "astype atan atan2 atanh atleast_1d atleast_2d atleast_3d average bartlett base_repr "
            "binary_repr bincount bitwise_and bitwise_count bitwise_invert bitwise_left_shift "
            "bitwise_not bitwise_or bitwise_right_shift bitwise_xor blackman block bmat bool "
            "bool_ broadcast broadcast_arrays broadcast_shapes broadcast_to busday_count "
            "busday_offset busdaycalendar byte bytes_ c_ can_cast cbrt cdouble ceil character "
            "choose clip clongdouble column_stack common_type complex128 complex256 complex64 "
            "complexfloating compress concat concatenate conj conjugate convolve copy copysign "
            "copyto corrcoef correlate cos cosh count_nonzero cov cross csingle cumprod cumsum "
            "cumulative_prod cumulative_sum datetime64 datetime_as_string datetime_data deg2rad "
            "degrees delete diag diag_indices diag_indices_from diagflat diagonal diff digitize "
            "divide divmod dot double dsplit dstack dtype e ediff1d einsum einsum_path empty "
            "empty_like equal errstate euler_gamma exp exp2 expand_dims expm1 extract eye fabs "
            "fill_diagonal finfo fix flatiter flatnonzero flexible flip fliplr flipud float128 "
            "float16 float32 float64 float_power floating floor floor_divide fmax fmin fmod "
            "format_float_positional format_float_scientific frexp from_dlpack frombuffer "
            "fromfile fromfunction fromiter frompyfunc fromregex fromstring full full_like gcd "
            "generic genfromtxt geomspace get_include get_printoptions getbufsize geterr "
            "geterrcall gradient greater greater_equal half hamming hanning heaviside histogram "
            "histogram2d histogram_bin_edges histogramdd hsplit hstack hypot i0 identity iinfo "
            "imag index_exp indices inexact inf info inner insert int16 int32 int64 int8 int_ "
            "intc integer interp intersect1d intp invert is_busday isclose iscomplex iscomplexobj "
            "isdtype isfinite isfortran isin isinf isnan isnat isneginf isposinf isreal isrealobj "
            "isscalar issubdtype iterable ix_ kaiser kron lcm ldexp left_shift less less_equal "
            "lexsort linspace little_endian load loadtxt log log10 log1p log2 logaddexp "
            "logaddexp2 logical_and logical_not logical_or logical_xor logspace long longdouble "
            "longlong mask_indices matmul matrix matrix_transpose matvec max maximum "
            "may_share_memory mean median memmap meshgrid mgrid min min_scalar_type minimum "
            "mintypecode mod modf moveaxis multiply nan nan_to_num nanargmax nanargmin nancumprod "
            "nancumsum nanmax nanmean nanmedian nanmin nanpercentile nanprod nanquantile nanstd "
            "nansum nanvar ndarray ndenumerate ndim ndindex nditer negative nested_iters newaxis "
            "nextafter nonzero not_equal number object_ ogrid ones ones_like outer packbits pad "
            "partition percentile permute_dims pi piecewise place poly poly1d polyadd polyder "
            "polydiv polyfit polyint polymul polysub polyval positive pow power printoptions prod "
            "promote_types ptp put put_along_axis putmask quantile r_ rad2deg radians ravel "
            "ravel_multi_index real real_if_close recarray reciprocal record remainder repeat "
            "requested_backend require reshape resize result_type right_shift rint roll rollaxis "
            "roots rot90 round row_stack s_ save savetxt savez savez_compressed sctypeDict "
            "searchsorted select set_printoptions setbufsize setdiff1d seterr seterrcall setxor1d "
            "shape shares_memory short show_config show_runtime sign signbit signedinteger sin "
            "sinc single sinh size sort sort_complex spacing split sqrt square squeeze stack std "
            "str_ subtract sum swapaxes take take_along_axis tan tanh tensordot test tile "
            "timedelta64 trace transpose trapezoid tri tril tril_indices tril_indices_from "
            "trim_zeros triu triu_indices triu_indices_from true_divide trunc typecodes typename "
            "ubyte ufunc uint uint16 uint32 uint64 uint8 uintc uintp ulong ulonglong union1d "
            "unique unique_all unique_counts unique_inverse unique_values unpackbits "
            "unravel_index unsignedinteger unstack unwrap ushort vander var vdot vecdot vecmat "
            "vectorize void vsplit vstack where zeros zeros_like"
        ),
        "from numpy.fft import {}": (
            "fft2 fftfreq fftn fftshift hfft ifft ifft2 ifftn ifftshift ihfft irfft irfft2 irfftn "
            "rfft rfft2 rfftfreq rfftn"
        ),
        "from numpy.linalg import {}": (
            "LinAlgError cholesky cond det eig eigh eigvals eigvalsh inv lstsq matrix_norm "
            "matrix_power matrix_rank multi_dot norm pinv qr slogdet solve svd svdvals tensorinv "
            "tensorsolve vector_norm"
        ),
        "from numpy.random import {}": (
            "BitGenerator Generator MT19937 PCG64 PCG64DXSM Philox RandomState SFC64 SeedSequence "
            "beta binomial chisquare choice default_rng dirichlet exponential f gamma geometric "
            "get_state gumbel hypergeometric laplace logistic lognormal logseries multinomial "
            "multivariate_normal negative_binomial noncentral_chisquare noncentral_f normal "
            "pareto permutation poisson rand randint randn random_integers random_sample ranf "
            "rayleigh sample seed set_state shuffle standard_cauchy standard_exponential "
            "standard_gamma standard_normal standard_t triangular uniform vonmises wald weibull "
            "zipf"
        ),
        "import datetime": (
            "datetime"
        ),
        "import functools": (
            "functools"
        ),
        "import importlib": (
            "importlib"
        ),
        "import inspect": (
            "inspect"
        ),
        "import logging": (
            "logging"
        ),
        "import matplotlib": (
            "matplotlib"
        ),
        "import matplotlib as mpl": (
            "mpl"
        ),
        "import matplotlib.pyplot as plt": (
            "plt"
        ),
        "import numpy": (
            "numpy"
        ),
        "import numpy as np": (
            "np"
        ),
        "import numpy.lib.scimath as emath": (
            "emath"
        ),
        "import sys": (
            "sys"
        ),
        "import threading": (
            "threading"
        ),
        "import time": (
            "time"
        ),
    },
    "%pylab --no-import-all": {
        "from IPython.core.pylabtools import {}": (
            "figsize getfigs"
        ),
        "from matplotlib import mlab": (
            "mlab"
        ),
        "from matplotlib import pylab": (
            "pylab"
        ),
        "from matplotlib import pyplot": (
            "pyplot"
        ),
        "import matplotlib": (
            "matplotlib"
        ),
        "import matplotlib.pyplot as plt": (
            "plt"
        ),
        "import numpy": (
            "numpy"
        ),
        "import numpy as np": (
            "np"
        ),
    },
    "pylab": {
        "from matplotlib import cbook": (
            "cbook"
        ),
        "from matplotlib import cm": (
            "cm"
        ),
        "from matplotlib import mlab": (
            "mlab"
        ),
        "from matplotlib import rcsetup": (
            "rcsetup"
        ),
        "from matplotlib import style": (
            "style"
        ),
        "from matplotlib.cbook import {}": (
            "flatten silent_list"
        ),
        "from matplotlib.dates import {}": (
            "DAILY DateFormatter DateLocator DayLocator FR HOURLY HourLocator MINUTELY MO MONTHLY "
            "MinuteLocator MonthLocator RRuleLocator SA SECONDLY SU SecondLocator TH TU WE WEEKLY "
            "WeekdayLocator YEARLY YearLocator date2num datestr2num drange num2date relativedelta "
            "rrule"
        ),
        "from matplotlib.mlab import {}": (
            "detrend detrend_linear detrend_mean detrend_none window_hanning window_none"
        ),
        "from matplotlib.pyplot import {}": (
            "AbstractContextManager Annotation Arrow Artist AutoLocator AxLine Axes BackendFilter "
            "Button Circle Colorizer ColorizingArtist Colormap Enum ExitStack Figure FigureBase "
            "FigureCanvasBase FigureManagerBase FixedFormatter FixedLocator FormatStrFormatter "
            "Formatter FuncFormatter GridSpec IO IndexLocator Line2D LinearLocator Locator "
            "LogFormatter LogFormatterExponent LogFormatterMathtext LogLocator MaxNLocator "
            "MouseButton MultipleLocator Normalize NullFormatter NullLocator PolarAxes Polygon "
            "Rectangle ScalarFormatter Slider Subplot SubplotSpec TYPE_CHECKING Text TickHelper "
            "Widget acorr angle_spectrum annotate annotations arrow autoscale autumn "
            "available_backends axes axhline axhspan axis axline axvline axvspan backend_registry "
            "bar bar_label barbs barh bone box boxplot broken_barh cast cla clabel clf clim close "
            "cohere color_sequences colorbar colormaps connect contour contourf cool copper csd "
            "cycler delaxes disconnect draw draw_all draw_if_interactive ecdf errorbar eventplot "
            "figaspect figimage figlegend fignum_exists figtext figure fill fill_between "
            "fill_betweenx findobj flag gca gcf gci get get_backend get_cmap "
            "get_current_fig_manager get_figlabels get_fignums get_plot_commands get_scale_names "
            "getp ginput gray grid grouped_bar hexbin hist hist2d hlines hot hsv imread imsave "
            "imshow inferno install_repl_displayhook interactive ioff ion isinteractive jet "
            "legend locator_params loglog magma magnitude_spectrum margins matshow minorticks_off "
            "minorticks_on new_figure_manager nipy_spectral overload pause pcolor pcolormesh "
            "phase_spectrum pie pie_label pink plasma plot polar prism psd quiver quiverkey rc "
            "rcParams rcParamsDefault rcParamsOrig rc_context rcdefaults rgrids savefig sca "
            "scatter sci semilogx semilogy set_cmap set_loglevel setp show specgram spring spy "
            "stackplot stairs stem step streamplot subplot subplot2grid subplot_mosaic "
            "subplot_tool subplots subplots_adjust summer suptitle switch_backend table text "
            "thetagrids tick_params ticklabel_format tight_layout title tricontour tricontourf "
            "tripcolor triplot twinx twiny uninstall_repl_displayhook violinplot viridis vlines "
            "waitforbuttonpress winter xcorr xkcd xlabel xlim xscale xticks ylabel ylim yscale "
            "yticks"
        ),
        "from numpy import char": (
            "char"
        ),
        "from numpy import core": (
            "core"
        ),
        "from numpy import ctypeslib": (
            "ctypeslib"
        ),
        "from numpy import dtypes": (
            "dtypes"
        ),
        "from numpy import exceptions": (
            "exceptions"
        ),
        "from numpy import f2py": (
            "f2py"
        ),
        "from numpy import lib": (
            "lib"
        ),
        "from numpy import linalg": (
            "linalg"
        ),
        "from numpy import ma": (
            "ma"
        ),
        "from numpy import polynomial": (
            "polynomial"
        ),
        "from numpy import rec": (
            "rec"
        ),
        "from numpy import strings": (
            "strings"
        ),
        "from numpy import testing": (
            "testing"
        ),
        "from numpy import typing": (
            "typing"
        ),
        "from numpy import {}": (
            "False_ ScalarType True_ absolute acos acosh add all allclose amax amin angle any "
            "append apply_along_axis apply_over_axes arange arccos arccosh arcsin arcsinh arctan "
            "arctan2 arctanh argmax argmin argpartition argsort argwhere around array "
            "array2string array_equal array_equiv array_repr array_split array_str asanyarray "
            "asarray asarray_chkfinite ascontiguousarray asfortranarray asin asinh asmatrix "
            "astype atan atan2 atanh atleast_1d atleast_2d atleast_3d average bartlett base_repr "
            "binary_repr bincount bitwise_and bitwise_count bitwise_invert bitwise_left_shift "
            "bitwise_not bitwise_or bitwise_right_shift bitwise_xor blackman block bmat bool_ "
            "broadcast broadcast_arrays broadcast_shapes broadcast_to busday_count busday_offset "
            "busdaycalendar byte bytes_ c_ can_cast cbrt cdouble ceil character choose clip "
            "clongdouble column_stack common_type complex128 complex256 complex64 complexfloating "
            "compress concat concatenate conj conjugate convolve copy copysign copyto corrcoef "
            "correlate cos cosh count_nonzero cov csingle cumprod cumsum cumulative_prod "
            "cumulative_sum datetime64 datetime_as_string datetime_data deg2rad degrees delete "
            "diag diag_indices diag_indices_from diagflat diff digitize divide divmod dot double "
            "dsplit dstack dtype e ediff1d einsum einsum_path empty empty_like equal errstate "
            "euler_gamma exp exp2 expand_dims expm1 extract eye fabs fill_diagonal finfo fix "
            "flatiter flatnonzero flexible flip fliplr flipud float128 float16 float32 float64 "
            "float_power floating floor floor_divide fmax fmin fmod format_float_positional "
            "format_float_scientific frexp from_dlpack frombuffer fromfile fromfunction fromiter "
            "frompyfunc fromregex fromstring full full_like gcd generic genfromtxt geomspace "
            "get_include get_printoptions getbufsize geterr geterrcall gradient greater "
            "greater_equal half hamming hanning heaviside histogram histogram2d "
            "histogram_bin_edges histogramdd hsplit hstack hypot i0 identity iinfo imag index_exp "
            "indices inexact inf info inner insert int16 int32 int64 int8 int_ intc integer "
            "interp intersect1d intp invert is_busday isclose iscomplex iscomplexobj isdtype "
            "isfinite isfortran isin isinf isnan isnat isneginf isposinf isreal isrealobj "
            "isscalar issubdtype iterable ix_ kaiser kron lcm ldexp left_shift less less_equal "
            "lexsort linspace little_endian load loadtxt log log10 log1p log2 logaddexp "
            "logaddexp2 logical_and logical_not logical_or logical_xor logspace long longdouble "
            "longlong mask_indices matrix matvec maximum may_share_memory mean median memmap "
            "meshgrid mgrid min_scalar_type minimum mintypecode mod modf moveaxis multiply nan "
            "nan_to_num nanargmax nanargmin nancumprod nancumsum nanmax nanmean nanmedian nanmin "
            "nanpercentile nanprod nanquantile nanstd nansum nanvar ndarray ndenumerate ndim "
            "ndindex nditer negative nested_iters newaxis nextafter nonzero not_equal number "
            "object_ ogrid ones ones_like packbits pad partition percentile permute_dims pi "
            "piecewise place poly poly1d polyadd polyder polydiv polyfit polyint polymul polysub "
            "polyval positive printoptions prod promote_types ptp put put_along_axis putmask "
            "quantile r_ rad2deg radians ravel ravel_multi_index real real_if_close recarray "
            "reciprocal record remainder repeat requested_backend require reshape resize "
            "result_type right_shift rint roll rollaxis roots rot90 row_stack s_ save savetxt "
            "savez savez_compressed sctypeDict searchsorted select set_printoptions setbufsize "
            "setdiff1d seterr seterrcall setxor1d shape shares_memory short show_config "
            "show_runtime sign signbit signedinteger sin sinc single sinh size sort sort_complex "
            "spacing split sqrt square squeeze stack std str_ subtract sum swapaxes take "
            "take_along_axis tan tanh test tile timedelta64 transpose trapezoid tri tril "
            "tril_indices tril_indices_from trim_zeros triu triu_indices triu_indices_from "
            "true_divide trunc typecodes typename ubyte ufunc uint uint16 uint32 uint64 uint8 "
            "uintc uintp ulong ulonglong union1d unique unique_all unique_counts unique_inverse "
            "unique_values unpackbits unravel_index unsignedinteger unstack unwrap ushort vander "
            "var vdot vecmat vectorize void vsplit vstack where zeros zeros_like"
        ),
        "from numpy.fft import {}": (
            "fft fft2 fftfreq fftn fftshift hfft ifft ifft2 ifftn ifftshift ihfft irfft irfft2 "
            "irfftn rfft rfft2 rfftfreq rfftn"
        ),
        "from numpy.linalg import {}": (
            "LinAlgError cholesky cond cross det diagonal eig eigh eigvals eigvalsh inv lstsq "
            "matmul matrix_norm matrix_power matrix_rank matrix_transpose multi_dot norm outer "
            "pinv qr slogdet solve svd svdvals tensordot tensorinv tensorsolve trace vecdot "
            "vector_norm"
        ),
        "from numpy.random import {}": (
            "BitGenerator Generator MT19937 PCG64 PCG64DXSM Philox RandomState SFC64 SeedSequence "
            "beta binomial chisquare choice default_rng dirichlet exponential f gamma geometric "
            "get_state gumbel hypergeometric laplace logistic lognormal logseries multinomial "
            "multivariate_normal negative_binomial noncentral_chisquare noncentral_f normal "
            "pareto permutation poisson power rand randint randn random random_integers "
            "random_sample ranf rayleigh sample seed set_state shuffle standard_cauchy "
            "standard_exponential standard_gamma standard_normal standard_t triangular uniform "
            "vonmises wald weibull zipf"
        ),
        "import datetime": (
            "datetime"
        ),
        "import functools": (
            "functools"
        ),
        "import importlib": (
            "importlib"
        ),
        "import inspect": (
            "inspect"
        ),
        "import logging": (
            "logging"
        ),
        "import matplotlib": (
            "matplotlib"
        ),
        "import matplotlib as mpl": (
            "mpl"
        ),
        "import matplotlib.pyplot as plt": (
            "plt"
        ),
        "import numpy as np": (
            "np"
        ),
        "import numpy.lib.scimath as emath": (
            "emath"
        ),
        "import sys": (
            "sys"
        ),
        "import threading": (
            "threading"
        ),
        "import time": (
            "time"
        ),
    },
    "numpy": {
        "from numpy import char": (
            "char"
        ),
        "from numpy import core": (
            "core"
        ),
        "from numpy import ctypeslib": (
            "ctypeslib"
        ),
        "from numpy import dtypes": (
            "dtypes"
        ),
        "from numpy import exceptions": (
            "exceptions"
        ),
        "from numpy import f2py": (
            "f2py"
        ),
        "from numpy import fft": (
            "fft"
        ),
        "from numpy import lib": (
            "lib"
        ),
        "from numpy import linalg": (
            "linalg"
        ),
        "from numpy import ma": (
            "ma"
        ),
        "from numpy import polynomial": (
            "polynomial"
        ),
        "from numpy import random": (
            "random"
        ),
        "from numpy import rec": (
            "rec"
        ),
        "from numpy import strings": (
            "strings"
        ),
        "from numpy import testing": (
            "testing"
        ),
        "from numpy import typing": (
            "typing"
        ),
        "from numpy import {}": (
            "False_ ScalarType True_ abs absolute acos acosh add all allclose amax amin angle any "
            "append apply_along_axis apply_over_axes arange arccos arccosh arcsin arcsinh arctan "
            "arctan2 arctanh argmax argmin argpartition argsort argwhere around array "
            "array2string array_equal array_equiv array_repr array_split array_str asanyarray "
            "asarray asarray_chkfinite ascontiguousarray asfortranarray asin asinh asmatrix "
            "astype atan atan2 atanh atleast_1d atleast_2d atleast_3d average bartlett base_repr "
            "binary_repr bincount bitwise_and bitwise_count bitwise_invert bitwise_left_shift "
            "bitwise_not bitwise_or bitwise_right_shift bitwise_xor blackman block bmat bool "
            "bool_ broadcast broadcast_arrays broadcast_shapes broadcast_to busday_count "
            "busday_offset busdaycalendar byte bytes_ c_ can_cast cbrt cdouble ceil character "
            "choose clip clongdouble column_stack common_type complex128 complex256 complex64 "
            "complexfloating compress concat concatenate conj conjugate convolve copy copysign "
            "copyto corrcoef correlate cos cosh count_nonzero cov cross csingle cumprod cumsum "
            "cumulative_prod cumulative_sum datetime64 datetime_as_string datetime_data deg2rad "
            "degrees delete diag diag_indices diag_indices_from diagflat diagonal diff digitize "
            "divide divmod dot double dsplit dstack dtype e ediff1d einsum einsum_path empty "
            "empty_like equal errstate euler_gamma exp exp2 expand_dims expm1 extract eye fabs "
            "fill_diagonal finfo fix flatiter flatnonzero flexible flip fliplr flipud float128 "
            "float16 float32 float64 float_power floating floor floor_divide fmax fmin fmod "
            "format_float_positional format_float_scientific frexp from_dlpack frombuffer "
            "fromfile fromfunction fromiter frompyfunc fromregex fromstring full full_like gcd "
            "generic genfromtxt geomspace get_include get_printoptions getbufsize geterr "
            "geterrcall gradient greater greater_equal half hamming hanning heaviside histogram "
            "histogram2d histogram_bin_edges histogramdd hsplit hstack hypot i0 identity iinfo "
            "imag index_exp indices inexact inf info inner insert int16 int32 int64 int8 int_ "
            "intc integer interp intersect1d intp invert is_busday isclose iscomplex iscomplexobj "
            "isdtype isfinite isfortran isin isinf isnan isnat isneginf isposinf isreal isrealobj "
            "isscalar issubdtype iterable ix_ kaiser kron lcm ldexp left_shift less less_equal "
            "lexsort linspace little_endian load loadtxt log log10 log1p log2 logaddexp "
            "logaddexp2 logical_and logical_not logical_or logical_xor logspace long longdouble "
            "longlong mask_indices matmul matrix matrix_transpose matvec max maximum "
            "may_share_memory mean median memmap meshgrid mgrid min min_scalar_type minimum "
            "mintypecode mod modf moveaxis multiply nan nan_to_num nanargmax nanargmin nancumprod "
            "nancumsum nanmax nanmean nanmedian nanmin nanpercentile nanprod nanquantile nanstd "
            "nansum nanvar ndarray ndenumerate ndim ndindex nditer negative nested_iters newaxis "
            "nextafter nonzero not_equal number object_ ogrid ones ones_like outer packbits pad "
            "partition percentile permute_dims pi piecewise place poly poly1d polyadd polyder "
            "polydiv polyfit polyint polymul polysub polyval positive pow power printoptions prod "
            "promote_types ptp put put_along_axis putmask quantile r_ rad2deg radians ravel "
            "ravel_multi_index real real_if_close recarray reciprocal record remainder repeat "
            "require reshape resize result_type right_shift rint roll rollaxis roots rot90 round "
            "row_stack s_ save savetxt savez savez_compressed sctypeDict searchsorted select "
            "set_printoptions setbufsize setdiff1d seterr seterrcall setxor1d shape shares_memory "
            "short show_config show_runtime sign signbit signedinteger sin sinc single sinh size "
            "sort sort_complex spacing split sqrt square squeeze stack std str_ subtract sum "
            "swapaxes take take_along_axis tan tanh tensordot test tile timedelta64 trace "
            "transpose trapezoid tri tril tril_indices tril_indices_from trim_zeros triu "
            "triu_indices triu_indices_from true_divide trunc typecodes typename ubyte ufunc uint "
            "uint16 uint32 uint64 uint8 uintc uintp ulong ulonglong union1d unique unique_all "
            "unique_counts unique_inverse unique_values unpackbits unravel_index unsignedinteger "
            "unstack unwrap ushort vander var vdot vecdot vecmat vectorize void vsplit vstack "
            "where zeros zeros_like"
        ),
        "import numpy.lib.scimath as emath": (
            "emath"
        ),
    },
}
