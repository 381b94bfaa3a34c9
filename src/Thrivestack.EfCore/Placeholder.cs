namespace Thrivestack.EfCore;
